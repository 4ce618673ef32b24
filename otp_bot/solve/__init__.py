"""The draft life cycle and the per-account worker."""
