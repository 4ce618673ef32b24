"""The local control API (server) and its client."""
