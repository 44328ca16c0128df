"""Aggregation rules, one per module, registered at import."""
