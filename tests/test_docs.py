"""The README's operations guide names every log event (with its fields) and
every metric the code emits, so it cannot silently fall behind the code.

``python tests/test_docs.py`` prints the current event table in the README's
format, for updating the guide after a change.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "otp_bot"
README = ROOT / "README.md"
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
METRIC_TYPES = frozenset({"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"})
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
    """Names given to prometheus-client metric constructors in otp_bot/daemon/metrics.py."""
    tree = ast.parse((PACKAGE / "daemon" / "metrics.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in METRIC_TYPES:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def operations_section() -> str:
    """README text from "## Operations" to the next second-level heading."""
    text = README.read_text()
    start = text.find("\n## Operations")
    assert start >= 0, 'README.md has no "## Operations" section'
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def documented_events() -> dict[str, str]:
    """Event name -> its table row, from rows that start with a `code` cell."""
    rows = {}
    for line in operations_section().splitlines():
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
    assert event in documented_events(), f"add `{event}` to README.md, ## Operations"


@pytest.mark.parametrize("event", sorted(events()))
def test_every_log_field_is_documented(event: str) -> None:
    """Each keyword field an event is logged with is named in that event's row."""
    row = documented_events().get(event, "")
    missing = [f for f in sorted(events()[event]) if not re.search(rf"`{f}`", row)]
    assert not missing, f"README row of `{event}` lacks {missing}"


def test_metrics_are_found() -> None:
    """The metrics module defines metrics (guards against a broken scan)."""
    assert len(metric_names()) >= 3


@pytest.mark.parametrize("metric", sorted(metric_names()))
def test_every_metric_is_documented(metric: str) -> None:
    """Each metric defined in otp_bot/daemon/metrics.py is named in the operations guide."""
    assert re.search(rf"`{metric}(_total|_bucket|_count|_sum)?[`{{]", operations_section()), metric


def main() -> None:
    print("| event | level | fields | meaning |\n|---|---|---|---|")
    for event, (levels, fields) in sorted(scan().items()):
        shown = ", ".join(f"`{f}`" for f in sorted(fields)) or "-"
        print(f"| `{event}` | {'/'.join(sorted(levels))} | {shown} | |")


if __name__ == "__main__":
    main()
