"""`python -m services.chatd`."""

from lakehouse_common.app import run_service
from services.chatd.app import create_app

if __name__ == "__main__":
    run_service("chatd", create_app)
