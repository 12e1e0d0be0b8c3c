"""queryd tests."""
