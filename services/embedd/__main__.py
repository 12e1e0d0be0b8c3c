"""`python -m services.embedd`."""

from lakehouse_common.app import run_service
from services.embedd.app import create_app

if __name__ == "__main__":
    run_service("embedd", create_app)
