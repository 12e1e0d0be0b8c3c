"""vectord (SPEC §5): named hnswlib indexes of string ids with metadata, durable through a
write-ahead log and background snapshots under `<data_dir>/vectors/`."""
