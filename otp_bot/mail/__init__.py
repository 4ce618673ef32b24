"""Mail reading: pure, raw RFC 822 bytes in, an ``Evidence`` value out.

No I/O, no clock, no settings, no logging: may import only the standard
library's parsing modules and ``otp_bot.errors``.
"""
