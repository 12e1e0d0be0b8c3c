"""`python -m services.gateway`."""

from lakehouse_common.app import run_service
from services.gateway.app import create_app

if __name__ == "__main__":
    run_service("gateway", create_app)
