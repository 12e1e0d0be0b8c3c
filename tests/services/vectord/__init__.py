"""vectord tests: index/WAL units in-process, the HTTP API and durability on real daemons."""
