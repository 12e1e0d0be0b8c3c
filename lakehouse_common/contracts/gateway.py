"""The gateway's own wire format (SPEC §2): the one prefix it routes and its aggregate health.

- `GET /v1/health` → `{status, daemons: {name: {status, …}}}`: every installed daemon's
  `/health`, `status` `ok` only when all of them are;
- any other `/v1/{area}/…` is forwarded unchanged to the daemon that owns `area` (so every
  area's typed client works through the gateway); an area no daemon owns → 404 `not_found`.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "/v1"
HEALTH: Final = f"{PREFIX}/health"


def area_path(area: str) -> str:
    """The root of `area` behind the gateway (`/v1/{area}`)."""
    return f"{PREFIX}/{area}"
