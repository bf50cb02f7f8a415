"""orionfs.client."""
