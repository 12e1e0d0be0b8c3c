"""`python -m services.vectord`."""

from lakehouse_common.app import run_service
from services.vectord.app import create_app

if __name__ == "__main__":
    run_service("vectord", create_app)
