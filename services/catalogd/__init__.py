"""catalogd (SPEC §4): versioned dataset manifests, persisted through the Store."""
