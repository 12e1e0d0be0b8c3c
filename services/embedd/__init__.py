"""embedd (SPEC §5): text → L2-normalised vectors through a local or remote provider, with an
LRU cache and micro-batching of concurrent requests."""
