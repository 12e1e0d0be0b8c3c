"""`python -m services.pathwayd`."""

from lakehouse_common.app import run_service
from services.pathwayd.app import create_app

if __name__ == "__main__":
    run_service("pathwayd", create_app)
