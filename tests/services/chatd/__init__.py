"""chatd tests (SPEC §6, issue 6)."""
