"""The daemon: service (startup, loop, shutdown), per-account wiring, metrics, sd_notify, check.

The top of the product: may import every package below it (control, solve,
imap, postpress, store, mail), never ``otp_bot.sim``.
"""
