"""The postpress simulator and LinkedIn mail builder (``otp-bot simulate``, demo, tests).

Reached from the product only through the CLI's ``simulate`` command; may
import config, errors, logs, never the daemon.
"""
