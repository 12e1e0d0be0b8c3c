"""Real servers on loopback that speak external providers' APIs, for tests (no mocked clients)."""
