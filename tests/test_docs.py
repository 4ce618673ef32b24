"""The documentation cannot silently fall behind the code.

The reference pages in ``docs/reference/`` name every log event (with its
fields), every metric and every setting the code has; the MkDocs site builds
with ``--strict`` (no broken link, no page left out); the README stays a
short front page. ``python tests/test_docs.py`` prints the current event table
in the log reference's format, for updating it after a change.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "otp_bot"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LOG_REFERENCE = DOCS / "reference" / "logs.md"
METRIC_REFERENCE = DOCS / "reference" / "metrics.md"
CONFIG_REFERENCE = DOCS / "reference" / "configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"
# The README is the front page: what it is, the quickstart, a map. The rest is in docs/.
README_MAX_BYTES = 10 * 1024
SETTING_RE = re.compile(r"\bOTP_BOT_[A-Z0-9_]*[A-Z0-9]\b")
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
# prometheus-client's constructors and otp_bot/daemon/series.py's compact ones.
METRIC_TYPES = frozenset(
    {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
    | {"CounterSeries", "GaugeSeries", "HistogramSeries"}
)
EVENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# structlog's own keywords (a traceback, a stack), not fields of the event.
NOT_FIELDS = frozenset({"exc_info", "stack_info"})


def _is_logger(node: ast.expr) -> bool:
    """`log`, `logger`, `self._log`, ...: a name whose last part mentions log."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return "log" in name.lower()


def _level_of(node: ast.expr) -> str | None:
    """ "info" for `log.info`, `self._log.info`, ...; None for anything else."""
    if isinstance(node, ast.Attribute) and node.attr in LEVELS and _is_logger(node.value):
        return node.attr
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Names bound to logger methods, e.g. `emit = log.warning if failed else log.info`."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            levels = sorted(filter(None, (_level_of(n) for n in ast.walk(node.value))))
            if isinstance(target, ast.Name) and levels:
                found[target.id] = "/".join(levels)
    return found


def log_calls(source: str) -> Iterator[tuple[str, str, list[str]]]:
    """(event, level, fields) of every structlog call with a literal event name."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        level = _level_of(node.func) or aliases.get(getattr(node.func, "id", ""))
        first = node.args[0]
        if level and isinstance(first, ast.Constant) and isinstance(first.value, str):
            fields = [k.arg for k in node.keywords if k.arg and k.arg not in NOT_FIELDS]
            yield first.value, level, fields


def scan() -> dict[str, tuple[set[str], set[str]]]:
    """Event name -> (levels, fields) over every call in otp_bot/."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for event, level, fields in log_calls(path.read_text()):
            levels, known = found.setdefault(event, (set(), set()))
            levels.update(level.split("/"))
            known.update(fields)
    return found


def events() -> dict[str, set[str]]:
    """Every event name in otp_bot/ and the union of the fields it is logged with."""
    return {event: fields for event, (_, fields) in scan().items()}


def metric_names() -> set[str]:
    """Names given to metric constructors in otp_bot/daemon/metrics.py."""
    tree = ast.parse((PACKAGE / "daemon" / "metrics.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in METRIC_TYPES:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def documented_events() -> dict[str, str]:
    """Event name -> its table row, from rows that start with a `code` cell."""
    rows = {}
    for line in LOG_REFERENCE.read_text().splitlines():
        match = re.match(r"\|\s*`([a-z][a-z0-9_]*)`\s*\|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_the_code_logs_events() -> None:
    """The scan finds events, all snake_case (guards against a broken regex or AST walk)."""
    found = events()
    assert len(found) >= 10
    assert all(EVENT_RE.match(event) for event in found), sorted(found)


@pytest.mark.parametrize("event", sorted(events()))
def test_every_log_event_is_documented(event: str) -> None:
    """Each event name logged in otp_bot/ has a row in the operations guide."""
    assert event in documented_events(), f"add `{event}` to docs/reference/logs.md"


@pytest.mark.parametrize("event", sorted(events()))
def test_every_log_field_is_documented(event: str) -> None:
    """Each keyword field an event is logged with is named in that event's row."""
    row = documented_events().get(event, "")
    missing = [f for f in sorted(events()[event]) if not re.search(rf"`{f}`", row)]
    assert not missing, f"the row of `{event}` in docs/reference/logs.md lacks {missing}"


def test_metrics_are_found() -> None:
    """The metrics module defines metrics (guards against a broken scan)."""
    assert len(metric_names()) >= 3


@pytest.mark.parametrize("metric", sorted(metric_names()))
def test_every_metric_is_documented(metric: str) -> None:
    """Each metric defined in otp_bot/daemon/metrics.py is named in the metrics reference."""
    text = METRIC_REFERENCE.read_text()
    assert re.search(rf"`{metric}(_total|_bucket|_count|_sum)?[`{{]", text), metric


def settings_in_code() -> set[str]:
    """Every ``OTP_BOT_*`` name spelled out in otp_bot/, plus every field of Settings."""
    from otp_bot.config import ENV_PREFIX, Settings

    names = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    for path in PACKAGE.rglob("*.py"):
        names.update(SETTING_RE.findall(path.read_text()))
    return names


def test_settings_are_found() -> None:
    """The scan finds the settings (guards against a broken scan)."""
    assert {"OTP_BOT_API_KEY", "OTP_BOT_IMAP_HOST", "OTP_BOT_IMAP_PORT"} <= settings_in_code()


@pytest.mark.parametrize("name", sorted(settings_in_code()))
def test_every_setting_is_documented(name: str) -> None:
    """Each OTP_BOT_ setting is in .env.example and in the configuration reference."""
    assert re.search(rf"\b{name}\b", ENV_EXAMPLE.read_text()), f"add {name} to .env.example"
    documented = re.search(rf"`{name}`", CONFIG_REFERENCE.read_text())
    assert documented, f"add `{name}` to docs/reference/configuration.md"


def test_readme_is_a_front_page() -> None:
    """The README stays short and keeps the quickstart's two commands."""
    text = README.read_text()
    assert len(text.encode()) < README_MAX_BYTES, "move detail from README.md into docs/"
    assert "make demo" in text
    assert "make test" in text


def test_docs_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict` passes: every link resolves and no page is left out."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    # Not --quiet: it hides the warnings that --strict counts (a page left out
    # of the navigation would then pass).
    assert done.returncode == 0, done.stdout + done.stderr


def main() -> None:
    print("| event | level | fields | meaning |\n|---|---|---|---|")
    for event, (levels, fields) in sorted(scan().items()):
        shown = ", ".join(f"`{f}`" for f in sorted(fields)) or "-"
        print(f"| `{event}` | {'/'.join(sorted(levels))} | {shown} | |")


if __name__ == "__main__":
    main()


def cli_commands() -> set[str]:
    """Every subcommand `otp-bot --help` offers, read from the parser itself."""
    from otp_bot.cli import _parser

    parser = _parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return set(sub.choices)  # type: ignore[arg-type]


def test_cli_commands_are_found() -> None:
    """The parser offers the commands the design names (guards against a broken scan)."""
    assert {"run", "publish", "status", "extract", "check", "health"} <= cli_commands()


@pytest.mark.parametrize("command", sorted(cli_commands()))
def test_every_cli_command_is_documented(command: str) -> None:
    """Each `otp-bot` command is shown in the command-line reference."""
    text = (DOCS / "reference" / "cli.md").read_text()
    assert re.search(rf"otp-bot {re.escape(command)}\b", text), f"add `otp-bot {command}`"


def control_routes() -> set[str]:
    """Every (method, path) the control API serves, read from its aiohttp app."""
    from otp_bot.control.server import ControlServer
    from otp_bot.daemon.metrics import Metrics

    server = ControlServer("127.0.0.1:8787", [], Metrics(), events=object())  # type: ignore[arg-type]
    found = set()
    for route in server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if route.method != "HEAD":
            found.add(f"{route.method} {path}")
    return found


def test_control_routes_are_found() -> None:
    """The app serves the design's endpoints (guards against a broken scan)."""
    assert {"POST /drafts", "GET /drafts", "GET /healthz", "GET /metrics"} <= control_routes()


@pytest.mark.parametrize("route", sorted(control_routes()))
def test_every_control_endpoint_is_documented(route: str) -> None:
    """Each control API endpoint has a row in the control API reference."""
    text = (DOCS / "reference" / "control-api.md").read_text()
    method, path = route.split(" ", 1)
    shown = re.sub(r"\{[a-z_]+\}", "{id}", path)
    assert f"`{method} {shown}`" in text, f"add `{method} {shown}` to docs/reference/control-api.md"
