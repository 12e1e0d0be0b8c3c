"""`python -m services.queryd`."""

from lakehouse_common.app import run_service
from services.queryd.app import create_app

if __name__ == "__main__":
    run_service("queryd", create_app)
