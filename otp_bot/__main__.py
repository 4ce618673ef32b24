"""``python -m otp_bot`` is the ``otp-bot`` command."""

from otp_bot.cli import main

raise SystemExit(main())
