"""ingestd (SPEC §4): CSV/JSONL/Parquet uploads → zstd Parquet dataset versions in the catalog."""
