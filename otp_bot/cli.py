"""The ``otp-bot`` command line: parses arguments, builds settings, dispatches.

Exit codes: 0 success, 1 failure (the reason on stderr), 2 bad configuration
or usage, or another daemon already holds the state directory; ``check`` has
one per class of failure (``daemon/check.py``). Output cut short by its
reader (``otp-bot status | head``) ends quietly.

(Over 250 lines: one argparse tree, every command beside its thin handler, so
the file reads as the CLI's help; each handler imports its subsystem lazily.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from otp_bot import __version__
from otp_bot.cli_help import COMMANDS, epilog
from otp_bot.cli_ops import STATES, add_operator_commands, status_filters
from otp_bot.config import (
    DkimVerify,
    Settings,
    load_control_settings,
    load_settings_with_origins,
)
from otp_bot.config_load import load_many
from otp_bot.errors import ConfigError, OtpBotError, StateLocked
from otp_bot.logs import scrub_text
from otp_bot.terminal import json_text
from otp_bot.vocabulary import CheckpointType

if TYPE_CHECKING:
    from otp_bot.control.client import ControlClient

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# What a shell reports for a process ended by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141
LOG_LEVELS = ("debug", "info", "warning", "error")


def _env_files(args: argparse.Namespace) -> list[Path | None]:
    files: list[Path] = args.env_file if isinstance(args.env_file, list) else [args.env_file]
    return [path for path in files if path is not None] or [None]


def _settings(args: argparse.Namespace) -> list[Settings]:
    overrides = {"log_level": args.log_level} if args.log_level else {}
    return load_many(_env_files(args), **overrides)


def _control(args: argparse.Namespace) -> ControlClient:
    """A client of the running daemon: needs only its address and token, no other secret."""
    from otp_bot.control.client import ControlClient

    return ControlClient.from_settings(load_control_settings(_env_files(args)[0]))


def _nameserver(spec: str) -> str:
    from otp_bot.config import parse_nameserver

    try:
        parse_nameserver(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r} is not an IP address or ip:port") from None
    return spec


def _cmd_extract(args: argparse.Namespace) -> int:
    from otp_bot.mail.extract import extract

    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"otp-bot extract: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    keys = None
    if args.dkim_verify != DkimVerify.SERVER:  # the key lookup is the only I/O, done before reading
        import asyncio

        from otp_bot.mail.dkim import key_names_of
        from otp_bot.solve.dkimkeys import DkimKeys

        keys = DkimKeys.from_nameservers(args.dkim_nameserver or [])
        asyncio.run(keys.fetch(key_names_of(raw)))
    evidence = extract(
        raw,
        trusted_authserv_ids=frozenset(args.trusted_authserv_id or ()),
        server_results=args.dkim_verify != DkimVerify.SELF,
        dkim_keys=keys.lookup if keys is not None else None,
    )
    if args.json:
        print(json_text(evidence.to_dict()))
    else:
        print(evidence.summary())
    return EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    """Print the effective settings of each account, secrets hidden."""
    if not args.show_origin:
        print(json.dumps([settings.shown() for settings in _settings(args)], indent=2))
        return EXIT_OK
    for path in _env_files(args):
        settings, origins = load_settings_with_origins(path)
        print(f"# {path or 'environment only'}")
        for field, value in settings.shown().items():
            name = f"OTP_BOT_{field.upper()}"
            shown = value if isinstance(value, str) else json.dumps(value)
            print(f"{name}={shown}  # {origins.of(name)}")
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    """Serve the postpress simulator until SIGINT/SIGTERM (README, "Dry run")."""
    from otp_bot.sim.run import run_simulator

    return run_simulator(
        _settings(args),
        host=args.host,
        port=args.port,
        script_file=args.script,
        deliver=not args.no_mail,
    )


def _cmd_oauth2_token(args: argparse.Namespace) -> int:
    """Print an access token for XOAUTH2 (the token command of docs/mail-providers.md)."""
    from otp_bot.imap.oauth2 import TokenError, build_request, fetch_token

    try:
        request = build_request(
            provider=args.provider,
            client_id=args.client_id,
            client_secret_file=args.client_secret_file,
            refresh_token_file=args.refresh_token_file,
            client_credentials=args.client_credentials,
            tenant=args.tenant,
            token_url=args.token_url,
            scope=args.scope,
            cache=args.cache,
        )
        print(fetch_token(request))
    except TokenError as exc:
        print(f"otp-bot oauth2-token: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _add_oauth2_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = _command(sub, "oauth2-token")
    token.add_argument("--provider", choices=("google", "microsoft"), required=True)
    token.add_argument("--client-id", required=True, help="the OAuth2 application (client) id")
    token.add_argument("--client-secret-file", help="file holding the client secret")
    token.add_argument("--refresh-token-file", help="file holding the refresh token")
    token.add_argument(
        "--client-credentials",
        action="store_true",
        help="Microsoft 365 app-only access (IMAP.AccessAsApp) instead of a refresh token",
    )
    token.add_argument("--tenant", default="organizations", help="Microsoft tenant id or domain")
    token.add_argument("--scope", help="override the provider's IMAP scope")
    token.add_argument("--token-url", help="override the provider's token endpoint (https)")
    token.add_argument(
        "--cache", type=Path, help="keep the newest (rotated) refresh token in this file"
    )
    token.set_defaults(handler=_cmd_oauth2_token)


# --- the daemon and its control API (run, publish, status, check, health) ----


def _cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon for every account given, until SIGTERM/SIGINT; SIGHUP reloads."""
    import asyncio
    import signal

    # A reload asked for before the daemon listens for it must not kill it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    import structlog

    from otp_bot.daemon import service
    from otp_bot.daemon.sources import ENVIRONMENT, Sources
    from otp_bot.logs import configure

    sources = Sources(tuple(args.env_file or ()), args.env_dir, log_level=args.log_level)
    loaded, bad = sources.load()
    named = {str(path) for path in sources.env_files} | {ENVIRONMENT}
    strict = [error for source, error in bad if source in named]
    if strict:  # a file named on the command line must load: fail fast
        raise ConfigError("; ".join(strict))
    if not loaded:
        raise ConfigError("; ".join(f"{s}: {e}" for s, e in bad) or "no account configured")
    first = loaded[0][1]
    configure(first.log_format.value, first.log_level, [v for _, s in loaded for v in s.secrets()])
    for source, error in bad:  # a bad file in --env-dir is skipped, the others run
        structlog.get_logger(__name__).error("env_file_skipped", source=source, error=error)
    return asyncio.run(
        service.run(
            [s for _, s in loaded], sources=[name for name, _ in loaded], reload=sources.load
        )
    )


def _cmd_publish(args: argparse.Namespace) -> int:
    draft = _control(args).publish(
        args.draft_id, checkpoint=args.checkpoint, account_id=args.account_id, retry=args.retry
    )
    print(json.dumps(draft, ensure_ascii=False))
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from otp_bot.control.client import table

    drafts = _control(args).drafts(
        args.draft_id, account_id=args.account_id, **status_filters(args)
    )
    print(json.dumps(drafts, ensure_ascii=False) if args.json else table(drafts))
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    """Prove the set-up (``daemon/check.py``): one line per check, an exit code per class."""
    import asyncio

    from otp_bot.daemon import check as checks
    from otp_bot.logs import configure

    try:
        settings = _settings(args)[0]
    except ConfigError as exc:
        if not args.json:
            raise
        line = checks.failed("config", checks.EXIT_CONFIG, str(exc), exc.hint)
        print(scrub_text(json.dumps(checks.report([line]))))
        return EXIT_USAGE
    configure(settings.log_format.value, args.log_level or "warning", settings.secrets())
    quiet = args.json  # --json: one object at the end, nothing before it
    lines = asyncio.run(
        checks.check(settings, lambda line: quiet or print(scrub_text(line.text()), flush=True))
    )
    if args.json:
        print(scrub_text(json.dumps(checks.report(lines))))
    return checks.exit_code(lines)


def _cmd_health(args: argparse.Namespace) -> int:
    from otp_bot.control.client import health_line

    reply = _control(args).health(live=args.live)
    print(health_line(reply))
    return EXIT_OK if reply.status == 200 else EXIT_FAILURE


def _add_daemon_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = _command(sub, "run")
    _add_env_file(run, many=True)
    run.add_argument(
        "--env-dir",
        type=Path,
        metavar="DIR",
        help="also one account per DIR/*.env file (read again on SIGHUP)",
    )
    run.set_defaults(handler=_cmd_run)

    publish = _command(sub, "publish")
    publish.add_argument("draft_id", metavar="DRAFT_ID")
    _add_env_file(publish)
    publish.add_argument(
        "--checkpoint",
        choices=tuple(CheckpointType),
        help="a checkpoint someone else's publish call already received",
    )
    publish.add_argument("--account-id", help="when several accounts share the control API")
    publish.add_argument(
        "--retry", action="store_true", help="queue a failed draft again (others: unchanged)"
    )
    publish.set_defaults(handler=_cmd_publish)

    status = _command(sub, "status")
    status.add_argument("draft_id", metavar="DRAFT_ID", nargs="?")
    _add_env_file(status)
    status.add_argument("--json", action="store_true", help="a JSON array on stdout")
    status.add_argument("--account-id", "--account", help="only this account's drafts")
    status.add_argument("--state", choices=STATES, help="only drafts in this state")
    status.add_argument("--since", help="only drafts changed since: ISO 8601 time, or 30m, 2h, 7d")
    status.set_defaults(handler=_cmd_status)
    add_operator_commands(partial(_command, sub), _add_env_file, _control)

    check = _command(sub, "check")
    _add_env_file(check)
    check.add_argument("--json", action="store_true", help="one JSON object on stdout")
    check.set_defaults(handler=_cmd_check)

    health = _command(sub, "health")
    _add_env_file(health)
    health.add_argument(
        "--live",
        action="store_true",
        help="liveness: fail only for a stuck mailbox loop or a crashed task, not a refused "
        "login or a parked account (a restart fixes only the former)",
    )
    health.set_defaults(handler=_cmd_health)


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str
) -> argparse.ArgumentParser:
    summary, description, _examples = COMMANDS[name]
    parser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS, help=_LOG_LEVEL_HELP
    )
    return parser


_LOG_LEVEL_HELP = "log level of this run (overrides OTP_BOT_LOG_LEVEL)"


def _add_env_file(parser: argparse.ArgumentParser, *, many: bool = False) -> None:
    help_text = "file with OTP_BOT_* variables"
    if many:
        parser.add_argument(
            "--env-file", type=Path, action="append", help=help_text + " (repeatable)"
        )
    else:
        parser.add_argument("--env-file", type=Path, help=help_text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otp-bot",
        description=__doc__.splitlines()[0],
        epilog="`otp-bot COMMAND --help` shows each command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"otp-bot {__version__}")
    parser.add_argument("--log-level", choices=LOG_LEVELS, help=_LOG_LEVEL_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    extract = _command(sub, "extract")
    extract.add_argument("file", metavar="FILE.eml")
    extract.add_argument("--json", action="store_true", help="one JSON object on stdout")
    extract.add_argument(
        "--trusted-authserv-id",
        action="append",
        help="also trust Authentication-Results from this authserv-id",
    )
    extract.add_argument(
        "--dkim-verify",
        choices=[mode.value for mode in DkimVerify],
        default=DkimVerify.SERVER.value,
        help="who checks LinkedIn's DKIM signature, as OTP_BOT_DKIM_VERIFY (self looks the key "
        "up in DNS)",
    )
    extract.add_argument(
        "--dkim-nameserver",
        action="append",
        metavar="IP[:PORT]",
        type=_nameserver,
        help="DNS server for the DKIM key lookup (repeatable; default: the system's)",
    )
    extract.set_defaults(handler=_cmd_extract)

    config = _command(sub, "config")
    _add_env_file(config, many=True)
    config.add_argument(
        "--show-origin",
        action="store_true",
        help="one line per variable: its value (secrets hidden) and where it came from",
    )
    config.set_defaults(handler=_cmd_config)

    simulate = _command(sub, "simulate")
    _add_env_file(simulate, many=True)
    simulate.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    simulate.add_argument("--port", type=int, default=8790, help="0 picks a free port")
    simulate.add_argument("--script", type=Path, help="JSON file: draft id -> script")
    simulate.add_argument("--no-mail", action="store_true", help="issue codes, send no e-mail")
    simulate.set_defaults(handler=_cmd_simulate)
    _add_oauth2_command(sub)
    _add_daemon_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except ConfigError as exc:
        _fail("configuration error: ", exc)
        return EXIT_USAGE
    except StateLocked as exc:
        print(f"otp-bot: {scrub_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OtpBotError as exc:
        _fail("", exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader stopped reading (`| head`): end quietly. stdout is pointed
        # at /dev/null so that Python's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _fail(prefix: str, exc: OtpBotError) -> None:
    print(f"otp-bot: {prefix}{scrub_text(str(exc))}", file=sys.stderr)
    if exc.hint:
        print(f"  hint: {scrub_text(exc.hint)}", file=sys.stderr)
