"""`python -m services.catalogd`."""

from lakehouse_common.app import run_service
from services.catalogd.app import create_app

if __name__ == "__main__":
    run_service("catalogd", create_app)
