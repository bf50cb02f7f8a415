"""orionfs.fs."""
