"""A bare FastAPI endpoint answering a fixed JSON body of N bytes: the baseline the retrieval
bench divides by (`python scripts/bench/bare_server.py PORT BYTES`)."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Response


def main() -> None:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    body = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'
    app = FastAPI()

    @app.api_route("/fixed", methods=["GET", "POST"])
    async def fixed() -> Response:
        return Response(body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
