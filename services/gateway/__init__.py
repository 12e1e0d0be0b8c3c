"""gateway (SPEC §2): the single public entry — routing, auth, trace ids, aggregate health."""
