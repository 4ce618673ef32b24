"""The postpress API client: publish a draft, solve its checkpoint, read the account.

This is the only module that imports the aiohttp client. Everything aiohttp
raises is turned into otp-bot's own errors here (``otp_bot.errors``):

- an error envelope (either shape) -> ``classify()`` -> ``ApiError`` subclass;
- a network error or timeout -> ``TransientError`` whose problem has
  ``status=0`` and ``type="network_error"`` (``title`` names the failure);
- an answer we cannot read -> ``ProtocolError`` saying what was wrong;
- an input unfit to send -> ``InputRejected`` (nothing is sent);
- a base URL that is not an http(s) URL -> ``ConfigError``.

``TransientError`` is retried with backoff and jitter (bounded in attempts and
in total time, ``Retry-After`` honoured), with the same ``Idempotency-Key``;
it escapes only once the retries are used up. Nothing else is retried.

(Over 250 lines: the three calls share one request path, its retry loop and
its error translation; the pure bodies and answers are in ``wire``.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from otp_bot import __version__
from otp_bot.config import Settings
from otp_bot.errors import ApiProblem, ConfigError, ProtocolError, TransientError
from otp_bot.postpress.wire import (
    AccountStatus,
    Answer,
    Published,
    PublishOptions,
    check_text,
    decode_account,
    decode_answer,
    decode_problem,
    options_body,
)
from otp_bot.vocabulary import MAX_DRAFT_ID

log = structlog.get_logger(__name__)


def publish_defaults(settings: Settings) -> PublishOptions:
    """The operator's publish options (``OTP_BOT_PUBLISH_*``); a draft's own override them."""
    return PublishOptions(
        mode=settings.publish_mode.value,
        service=settings.publish_service.value,
        hiring_photo_frame=settings.publish_hiring_photo_frame,
        bypass_email_verification=settings.publish_bypass_email_verification,
    )


# A verification link is a few hundred characters; 4 kB leaves ample room.
MAX_INPUT = 4096
# API keys are ~40 characters; a much longer value is a pasted file, not a key.
MAX_SECRET = 1024
# Idempotency keys are opaque tokens; Stripe-style APIs cap them at 255.
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried. ``wait=False``: never sleep (tests)."""

    attempts: int = 6
    max_time: float = 180.0  # seconds, from the first attempt
    wait_initial: float = 1.0
    wait_max: float = 30.0
    wait: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            attempts=settings.api_retry_attempts,
            max_time=float(settings.api_retry_max_time),
        )


class SharedSessions:
    """One aiohttp session (connection pool) per API origin, for every account using it.

    A session per account would hold a connection pool, and its sockets, per
    account. Shared sessions keep no cookies (one account's must never reach
    another's requests); each request carries its own account's headers and
    timeout. ``close()`` once, after every client is done.
    """

    # Connections open at once to one API, over all accounts; more requests wait.
    # A storm of one draft per account queued behind 100 (bench/scale.py at
    # N=500: a request waited up to 5 s for a connection).
    LIMIT = 256

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def get(self, base_url: str) -> aiohttp.ClientSession:
        origin = _origin(base_url)
        session = self._sessions.get(origin)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.LIMIT),
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
            self._sessions[origin] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def _origin(base_url: str) -> str:
    scheme, _, rest = base_url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


class PostpressClient:
    """One account's view of the postpress API. Use as ``async with``.

    ``sessions``: share a connection pool with the other accounts of this
    process (the daemon does); without it the client owns its own session.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        account_id: str,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),  # a frozen value: safe to share
        max_body_bytes: int = 1_000_000,
        sessions: SharedSessions | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        check_text("api_key", api_key, MAX_SECRET)  # the message never holds the value
        check_text("account_id", account_id, MAX_DRAFT_ID)
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError("the postpress base URL must start with https:// or http://")
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._account_id = account_id
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry = retry
        # Called with the error type of every attempt that is retried (metrics).
        self.on_retry = on_retry
        self._max_body = max_body_bytes
        self._session: aiohttp.ClientSession | None = None
        self._sessions = sessions
        self._backoff = wait_exponential_jitter(
            initial=retry.wait_initial, max=retry.wait_max, jitter=retry.wait_initial
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sessions: SharedSessions | None = None,
        *,
        on_retry: Callable[[str], None] | None = None,
    ) -> PostpressClient:
        return cls(
            sessions=sessions,
            base_url=str(settings.api_base_url),
            api_key=settings.api_key.get_secret_value(),
            account_id=settings.account_id,
            timeout=float(settings.api_timeout),
            retry=RetryPolicy.from_settings(settings),
            on_retry=on_retry,
        )

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

    async def publish(
        self,
        draft_id: str,
        options: PublishOptions | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Publish a draft: ``Published``, or the ``Checkpoint`` to solve."""
        body = {"account_id": self._account_id, **options_body(options)}
        return await self._call("publish", draft_id, body, idempotency_key)

    async def solve_checkpoint(
        self, draft_id: str, input: str, *, idempotency_key: str | None = None
    ) -> Answer:
        """Submit a code or verification link: ``Published`` or the next ``Checkpoint``."""
        check_text("input", input, MAX_INPUT)
        body = {"account_id": self._account_id, "input": input}
        return await self._call("checkpoint", draft_id, body, idempotency_key)

    async def account(self) -> AccountStatus:
        """``GET /accounts/{id}``: the account's status, in one attempt (no retries).

        No side effects: ``otp-bot check`` proves a set-up with it and a held
        account is probed with it (the caller backs off between probes).
        Raises what the other calls raise: ``ApiError`` (401/403 an
        ``AccountError``, 404 a ``DraftError``), ``TransientError`` for network
        errors and 5xx, ``ProtocolError`` for an unreadable answer.
        """
        url = f"{self._base_url}/accounts/{quote(self._account_id, safe='')}"
        where = "account read"
        status, ctype, raw, retry_after = await self._request("GET", url, where, None, None)
        if 200 <= status < 300:
            found = decode_account(raw, ctype, where)
            log.info("api_account", usable=found.usable, statuses=found.statuses)
            return found
        raise decode_problem(status, raw, ctype, retry_after, where)

    async def _call(
        self, endpoint: str, draft_id: str, body: dict[str, Any], key: str | None
    ) -> Answer:
        check_text("draft_id", draft_id, MAX_DRAFT_ID)
        key = uuid.uuid4().hex if key is None else key
        check_text("idempotency_key", key, MAX_IDEMPOTENCY_KEY)
        url = f"{self._base_url}/linkedin/jobs/{quote(draft_id, safe='')}/{endpoint}"
        where = f"{endpoint} of draft {draft_id}"
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self._retry.attempts) | stop_before_delay(self._retry.max_time),
            wait=self._wait,
            sleep=asyncio.sleep if self._retry.wait else _no_sleep,
            before_sleep=partial(self._before_retry, endpoint, draft_id),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    answer = await self._post(url, where, body, key)
        except TransientError as exc:
            log.warning("api_gave_up", endpoint=endpoint, draft_id=draft_id, error=exc.type)
            raise
        state = answer.job_state if isinstance(answer, Published) else answer.type
        log.info(
            "api_answer",
            endpoint=endpoint,
            draft_id=draft_id,
            answer=type(answer).__name__,
            job_id=answer.job_id,
            state=state,
        )
        return answer

    def _before_retry(self, endpoint: str, draft_id: str, state: RetryCallState) -> None:
        error_type = _log_retry(endpoint, draft_id, state)
        if self.on_retry is not None:
            self.on_retry(error_type)

    async def _post(self, url: str, where: str, body: dict[str, Any], key: str) -> Answer:
        status, ctype, raw, retry_after = await self._request("POST", url, where, body, key)
        if 200 <= status < 300:
            return decode_answer(raw, ctype, where)
        raise decode_problem(status, raw, ctype, retry_after, where)

    async def _request(
        self, method: str, url: str, where: str, body: dict[str, Any] | None, key: str | None
    ) -> tuple[int, str, bytes, str | None]:
        """One HTTP exchange: (status, content type, body, Retry-After); errors become ours."""
        headers = {
            "X-API-KEY": self._api_key,
            "Accept": "application/json",
            "User-Agent": f"otp-bot/{__version__}",
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            # Never follow a redirect: it would carry X-API-KEY to another host,
            # and aiohttp turns a redirected POST into a GET.
            sent = self._client().request(
                method,
                url,
                json=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout,
            )
            async with sent as response:
                raw = await self._read(response, where)
                return (
                    response.status,
                    response.content_type,
                    raw,
                    response.headers.get("Retry-After"),
                )
        except aiohttp.InvalidURL:
            raise ConfigError(f"the postpress URL for the {where} is not a valid URL") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(_network_problem(exc)) from None

    async def _read(self, response: aiohttp.ClientResponse, where: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_body:
                raise ProtocolError(
                    f"postpress answered the {where} with a body larger than "
                    f"{self._max_body} bytes (HTTP {response.status}); refusing to read it"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _client(self) -> aiohttp.ClientSession:
        if self._sessions is not None:
            return self._sessions.get(self._base_url)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self._session

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TransientError) and error.problem.retry_after is not None:
            return error.problem.retry_after
        return float(self._backoff(state))


def _network_problem(exc: BaseException) -> ApiProblem:
    if isinstance(exc, TimeoutError):
        return ApiProblem(status=0, type="network_error", title="timeout", detail="no answer")
    return ApiProblem(status=0, type="network_error", title=type(exc).__name__, detail=str(exc))


async def _no_sleep(_seconds: float) -> None:
    return None


def _log_retry(endpoint: str, draft_id: str, state: RetryCallState) -> str:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    error_type = error.type if isinstance(error, TransientError) else type(error).__name__
    log.warning(
        "api_retry",
        endpoint=endpoint,
        draft_id=draft_id,
        attempt=state.attempt_number,
        wait=round(state.upcoming_sleep, 3),
        error=error_type,
        status=error.problem.status if isinstance(error, TransientError) else None,
    )
    return error_type
