"""pathwayd (SPEC §5): workflow pathways memory (durable JSON-lines log, in-memory index) and
next-step suggestions from the most similar past pathways of the same role."""
