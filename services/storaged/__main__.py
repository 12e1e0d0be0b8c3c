"""`python -m services.storaged`."""

from lakehouse_common.app import run_service
from services.storaged.app import create_app

if __name__ == "__main__":
    run_service("storaged", create_app)
