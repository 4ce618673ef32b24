"""The postpress simulator and LinkedIn mail builder (dry runs and tests)."""
