"""observerd (SPEC §5): append-only event streams (`_kb/{stream}.jsonl`), one group-committed
writer per stream, paged reads by line offset."""
