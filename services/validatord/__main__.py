"""`python -m services.validatord`."""

from lakehouse_common.app import run_service
from services.validatord.app import create_app

if __name__ == "__main__":
    run_service("validatord", create_app)
