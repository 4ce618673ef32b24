"""Events out: ``sign`` (pure: the body and its HMAC signature) and ``sender`` (the webhook's
bounded aiohttp client). What is sent, and when, is the daemon's outbox (``daemon/outbox.py``).

May import: config, errors.
"""
