"""The postpress API: ``wire`` (pure bodies and answers) and ``client`` (the only aiohttp
client and tenacity user). The contract it speaks: docs/contract.md.

May import: config, errors, logs.
"""
