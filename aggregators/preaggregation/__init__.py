"""Pre-aggregation steps, one per module, registered at import."""
