"""queryd (SPEC §4): read-only, sandboxed SQL over the lake's views with DuckDB."""
