"""`python -m services.matrixd`."""

from lakehouse_common.app import run_service
from services.matrixd.app import create_app

if __name__ == "__main__":
    run_service("matrixd", create_app)
