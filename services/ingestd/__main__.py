"""`python -m services.ingestd`."""

from lakehouse_common.app import run_service
from services.ingestd.app import create_app

if __name__ == "__main__":
    run_service("ingestd", create_app)
