"""The postpress API client: the only aiohttp client and tenacity user."""
