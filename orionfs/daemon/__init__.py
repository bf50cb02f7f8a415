"""orionfs.daemon."""
