"""Settings: one pydantic-settings object per account, built at the entry point.

Values come from the environment, from ``--env-file`` files (same names) and,
for secrets, from files in ``$CREDENTIALS_DIRECTORY`` (systemd
``LoadCredential=``) named like the variable, e.g. ``OTP_BOT_API_KEY``; ``otp_bot.sources`` refuses
typos and values given two ways before pydantic-settings reads them.

Longer than 250 lines: one settings class whose every field carries its why;
splitting it would scatter the variable reference.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    SettingsConfigDict,
)

from otp_bot.addresses import normalize_address
from otp_bot.errors import ConfigError
from otp_bot.logs import command_secrets, mask_command, mask_url, url_secrets
from otp_bot.sources import Origins, origins
from otp_bot.vocabulary import VERIFICATION_FORMS, InputForm, PublishMode, PublishService

ENV_PREFIX = "OTP_BOT_"
# Durations are given in seconds (fractions allowed).
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ImapSecurity(StrEnum):
    TLS = "tls"
    STARTTLS = "starttls"
    NONE = "none"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"
    AUTO = "auto"


class MailAction(StrEnum):
    """What to do with an e-mail once its code or link was submitted."""

    LEAVE = "leave"
    SEEN = "seen"
    MOVE = "move"
    DELETE = "delete"


class DkimVerify(StrEnum):
    """Who checks LinkedIn's DKIM signature: the receiving server's
    Authentication-Results, the bot itself, or both."""

    SERVER = "server"
    SELF = "self"
    BOTH = "both"


def _default_state_dir() -> Path:
    # systemd's StateDirectory= exports $STATE_DIRECTORY (possibly a
    # colon-separated list: the first entry is ours).
    state = os.environ.get("STATE_DIRECTORY", "")
    return Path(state.split(":")[0]) if state else Path("state")


def _is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (used by the control API's bind check)."""
    return _is_loopback(host)


def parse_nameserver(spec: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or ``[::1]:5353`` as (address, port)."""
    host, port = spec.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    ipaddress.ip_address(host)  # an address: a name here would need DNS to find DNS
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port {number} out of range")
    return host, number


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ControlSettings(BaseSettings):
    """What talking to a running daemon takes (``publish``, ``status``, ``health``).

    No postpress or IMAP secret is needed for that, so an operator's shell can
    use the account's env file as it is.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    control_addr: str = "127.0.0.1:8787"
    # Bearer token required by the control API (unset: no auth, loopback only).
    control_token: SecretStr | None = None
    # Without a control token, the CLI reads the daemon's own from here.
    state_dir: Path = Field(default_factory=_default_state_dir)

    @field_validator("control_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_host_port(value)
        return value


class Settings(ControlSettings):
    """Everything one account needs; see ``.env.example`` for each variable."""

    # --- postpress -----------------------------------------------------
    account_id: str = Field(min_length=1, max_length=200)
    api_key: SecretStr
    api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.postpress.ai/v1")
    api_timeout: Seconds = 30
    # Transient API failures are retried at most this many times in total ...
    api_retry_attempts: int = Field(default=6, ge=1, le=50)
    # ... and for at most this long, whichever comes first.
    api_retry_max_time: Seconds = 180

    # --- publish options (sent with every publish) -------------------------
    publish_mode: PublishMode = PublishMode.FREE
    publish_service: PublishService = PublishService.CLASSIC
    publish_hiring_photo_frame: bool | None = None
    publish_bypass_email_verification: bool | None = None

    # --- IMAP -------------------------------------------------------------
    imap_host: str = Field(min_length=1)
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_user: str = Field(min_length=1)
    imap_password: SecretStr | None = None
    imap_security: ImapSecurity = ImapSecurity.TLS
    # Extra CA bundle to verify the server's certificate (private CAs).
    imap_ca_file: Path | None = None
    imap_folder: str = "INBOX"
    # Command whose stdout is an OAuth2 access token (XOAUTH2 login). Run
    # without a shell; split like a POSIX command line.
    imap_oauth2_token_command: str | None = None
    # Access tokens are refreshed this long after they were obtained (Google
    # and Microsoft issue tokens valid for 60 minutes).
    imap_oauth2_token_lifetime: Seconds = 2700
    imap_timeout: Seconds = 30
    # IDLE is re-issued after this long (Gmail drops idle sessions after ~10 min).
    imap_idle_interval: Seconds = 480
    # Polling period when the server lacks IDLE.
    imap_poll_interval: Seconds = 20
    # While a draft waits for a code, the folder is probed this often, whatever
    # the server's IDLE does (some announce new mail only every 60 s).
    imap_probe_interval: Seconds = 5
    # On the very first start, mail received this long ago is still looked at.
    imap_lookback: Seconds = 3600
    # Larger messages are read only up to this size (LinkedIn mails are ~50 kB).
    imap_max_message_bytes: int = Field(default=2_000_000, ge=10_000)
    # Reconnect delays grow exponentially (with jitter) up to this ceiling.
    imap_backoff_max: Seconds = 60
    # After a refused login the bot waits this long before trying again.
    imap_auth_retry_interval: Seconds = 300
    # The account's LinkedIn e-mail address(es): when set, only mail whose To
    # names one of them counts for this account (shared mailboxes,
    # docs/many-accounts.md). Unset: every mail in the folder is this account's.
    mail_recipients: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How many accounts of one process may be connecting to IMAP at once (a
    # process-wide bound: the first account's value is used).
    imap_connect_concurrency: int = Field(default=32, ge=1, le=10_000)
    mail_after_use: MailAction = MailAction.LEAVE
    # CPU seconds one e-mail may take to read (in the reader's child process);
    # a mail over it is rejected as too_slow. LinkedIn's mails take about 1 ms.
    mail_cpu_budget: float = Field(default=0.25, gt=0, le=10, allow_inf_nan=False)
    # How many child processes may read mail at once (a process-wide bound: the
    # first account's value is used); 0: two per CPU, at most 4.
    mail_readers: int = Field(default=0, ge=0, le=32)
    mail_move_folder: str = "otp-bot/used"

    # --- trust and matching ------------------------------------------------
    # authserv-ids whose Authentication-Results header is trusted even when it
    # is not the topmost one (e.g. "mx.google.com").
    trusted_authserv_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # server: trust the receiving server's Authentication-Results; self: verify
    # LinkedIn's DKIM-Signature here (DNS lookups, cached); both: require both.
    dkim_verify: DkimVerify = DkimVerify.SERVER
    # DNS servers for the DKIM key lookup (host or host:port); empty: the system's.
    dkim_nameservers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Mail received up to this long before the checkpoint still counts
    # (clocks of LinkedIn, the mail server and this host differ).
    clock_skew: Seconds = 120
    # How long a draft waits for its e-mail before publishing again.
    code_timeout: Seconds = 900
    # How many times a draft may be published again (timeout, expired link).
    republish_limit: int = Field(default=3, ge=0, le=20)
    # EMAIL_VERIFICATION inputs to try, in order.
    verification_input_order: Annotated[list[InputForm], NoDecode] = Field(
        default_factory=lambda: [InputForm.LINK, InputForm.PIN]
    )

    # --- running ----------------------------------------------------------
    # /healthz fails when the mailbox loop made no progress for this long.
    health_max_stale: Seconds = 1200
    log_format: LogFormat = LogFormat.AUTO
    log_level: str = "info"
    # "i/n": this process runs only the accounts whose stable hash falls in
    # shard i of n (0 <= i < n), e.g. a StatefulSet's pod ordinal.
    shard: str | None = Field(default=None, pattern=r"^[0-9]{1,4}/[0-9]{1,4}$")
    # Finished drafts (and their history) are dropped this many days after
    # their last change; the pruning runs at start and then daily.
    retention_days: int = Field(default=90, ge=1, le=36500)

    # --- held accounts and outages -----------------------------------------
    # A draft whose API call keeps failing (network, 5xx, timeouts past the
    # retry budget) is retried with backoff for this long, then fails.
    draft_deadline: Seconds = 86400
    # Re-sends during an outage, and probes of a held account, start this far
    # apart and double up to the maximum.
    outage_retry_min: Seconds = 30
    outage_retry_max: Seconds = 300
    hold_probe_min: Seconds = 60
    hold_probe_max: Seconds = 900

    # --- events out ------------------------------------------------------------
    # Every draft state change is POSTed here, signed with the secret (unset: no webhook).
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = None
    # One delivery attempt may take this long; failed ones are retried with
    # backoff, up to the maximum delay, until delivered.
    webhook_timeout: Seconds = 10
    webhook_retry_max: Seconds = 300

    @field_validator(
        "trusted_authserv_ids",
        "verification_input_order",
        "dkim_nameservers",
        "mail_recipients",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("dkim_nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        for spec in value:
            try:
                parse_nameserver(spec)
            except ValueError:
                raise ValueError(f"{spec!r} is not an IP address or ip:port") from None
        return value

    @field_validator("verification_input_order")
    @classmethod
    def _non_empty_unique(cls, value: list[InputForm]) -> list[InputForm]:
        if not value or len(set(value)) != len(value) or not set(value) <= {*VERIFICATION_FORMS}:
            raise ValueError("must list link and/or pin, each at most once")
        return value

    @field_validator("api_key")
    @classmethod
    def _key_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

    @field_validator("imap_password", "control_token", "imap_oauth2_token_command", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("imap_ca_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        # Checked here, so that a wrong path stops the start with the file named
        # instead of failing every connection attempt.
        if value is not None and not value.is_file():
            raise ValueError(f"{value}: no such file")
        if value is not None and not os.access(value, os.R_OK):
            raise ValueError(f"{value}: not readable by this user")
        return value

    @field_validator("mail_recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        addresses = [normalize_address(item) for item in value]
        if any(a is None for a in addresses):
            raise ValueError("must be e-mail addresses (local@domain), comma-separated")
        return list(dict.fromkeys(a for a in addresses if a is not None))

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        if value is not None:
            index, count = (int(part) for part in value.split("/"))
            if not 0 <= index < count:
                raise ValueError("must be i/n with 0 <= i < n, e.g. 0/4")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be debug, info, warning or error")
        return value.lower()

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.imap_security is ImapSecurity.NONE and not _is_loopback(self.imap_host):
            raise ValueError(
                "OTP_BOT_IMAP_SECURITY=none is only allowed for a loopback "
                "OTP_BOT_IMAP_HOST (127.0.0.1, ::1, localhost)"
            )
        url = self.api_base_url
        if url.scheme != "https" and not _is_loopback(url.host or ""):
            raise ValueError(
                "OTP_BOT_API_BASE_URL: http:// is only allowed for a loopback host "
                "(the API key would travel in cleartext); use https://"
            )
        if self.imap_password is None and not self.imap_oauth2_token_command:
            raise ValueError("set OTP_BOT_IMAP_PASSWORD or OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND")
        if self.webhook_url is not None and not (
            self.webhook_secret and self.webhook_secret.get_secret_value()
        ):
            raise ValueError("OTP_BOT_WEBHOOK_URL needs OTP_BOT_WEBHOOK_SECRET (bodies are signed)")
        if self.outage_retry_min > self.outage_retry_max:
            raise ValueError("OTP_BOT_OUTAGE_RETRY_MIN must not exceed OTP_BOT_OUTAGE_RETRY_MAX")
        if self.hold_probe_min > self.hold_probe_max:
            raise ValueError("OTP_BOT_HOLD_PROBE_MIN must not exceed OTP_BOT_HOLD_PROBE_MAX")
        return self

    @property
    def state_db(self) -> Path:
        return self.state_dir / "otp-bot.sqlite3"

    def secrets(self) -> list[str]:
        """Every secret value this account knows, for log redaction."""
        values = [self.api_key, self.imap_password, self.control_token, self.webhook_secret]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        if self.imap_oauth2_token_command:
            found += [
                self.imap_oauth2_token_command,
                *command_secrets(self.imap_oauth2_token_command),
            ]
        for url in (self.api_base_url, self.webhook_url):
            if url is not None and (url.username or url.password):
                found += url_secrets(str(url))
        return found

    def shown(self) -> dict[str, Any]:
        """The settings as JSON values, every secret hidden (``otp-bot config``)."""
        shown: dict[str, Any] = self.model_dump(mode="json")
        shown["api_base_url"] = mask_url(shown["api_base_url"])
        if shown.get("webhook_url"):
            shown["webhook_url"] = mask_url(shown["webhook_url"])
        if self.imap_oauth2_token_command:
            shown["imap_oauth2_token_command"] = mask_command(self.imap_oauth2_token_command)
        return shown


def split_host_port(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8787")
    return host.strip("[]"), int(port)


def describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in item["loc"])
        name = f"{ENV_PREFIX}{field.upper()}" if field else "configuration"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required but not set"
        lines.append(f"{name}: {message}")
    return "; ".join(lines)


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, or raise ConfigError naming each bad variable.

    The message never contains a value (secrets included).
    """
    return _load(Settings, env_file, overrides)[0]


def load_settings_with_origins(env_file: Path | None = None) -> tuple[Settings, Origins]:
    """The settings and where each value came from (``otp-bot config --show-origin``)."""
    return _load(Settings, env_file, {})


def load_control_settings(env_file: Path | None = None) -> ControlSettings:
    """Only the control API's address and token (see ``ControlSettings``)."""
    return _load(ControlSettings, env_file, {})[0]


S = TypeVar("S", bound=ControlSettings)


def known_names() -> frozenset[str]:
    """Every OTP_BOT_* variable name (the settings' fields)."""
    return frozenset(f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields)


def _load(cls: type[S], env_file: Path | None, overrides: dict[str, Any]) -> tuple[S, Origins]:
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"env file not found: {env_file}")
    secrets_dir = os.environ.get("CREDENTIALS_DIRECTORY") or None
    # Unknown names, a value given two ways, empty credential files: refused here.
    found = origins(known_names(), env_file, os.environ, secrets_dir)
    try:
        settings = cls(  # type: ignore[call-arg]  # pydantic-settings' init-only arguments
            _env_file=env_file, _secrets_dir=secrets_dir, **overrides
        )
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
    return settings, found
