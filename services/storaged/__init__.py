"""storaged (SPEC §4): the object-store facade over the core's `Store` (local FS or S3)."""
