"""The webhook's HTTP client: one signed POST per event, bounded every way.

Bounded in time (one total timeout per delivery), in memory (at most
``MAX_RESPONSE`` bytes of the receiver's answer are read, then the
connection is dropped), and in reach: redirects are never followed (a 3xx is
a failed delivery, like any answer but 2xx), and at most ``CONNECTIONS``
connections are open. The secret and the URL's credentials never appear in
an error message: a failure names the status or the exception's type.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import aiohttp

from otp_bot import __version__
from otp_bot.errors import OtpBotError
from otp_bot.webhook.sign import EVENT_ID_HEADER, SIGNATURE_HEADER, signature_header

# The receiver's answer is not used; reading a little of it lets the
# connection be reused, reading more would let a receiver fill our memory.
MAX_RESPONSE = 64 * 1024
# Deliveries go one at a time per account; a few connections are plenty.
CONNECTIONS = 4


class DeliveryFailed(OtpBotError):
    """The receiver did not answer 2xx (``status``; 0: no answer at all)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class WebhookClient:
    """POSTs signed event bodies to one URL. Use as ``async with``."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._secret = secret.encode()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, event_id: int, body: bytes) -> int:
        """POST one event; its 2xx status, else ``DeliveryFailed``."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"otp-bot/{__version__}",
            EVENT_ID_HEADER: str(event_id),
            SIGNATURE_HEADER: signature_header(self._secret, int(self._clock()), body),
        }
        try:
            sent = self._client().post(self._url, data=body, headers=headers, allow_redirects=False)
            async with sent as response:
                await response.content.read(MAX_RESPONSE)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            name = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise DeliveryFailed(0, f"no answer ({name})") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(status, f"HTTP {status}")
        return status

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=CONNECTIONS),
                raise_for_status=False,
            )
        return self._session
