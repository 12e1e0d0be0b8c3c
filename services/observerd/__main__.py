"""`python -m services.observerd`."""

from lakehouse_common.app import run_service
from services.observerd.app import create_app

if __name__ == "__main__":
    run_service("observerd", create_app)
