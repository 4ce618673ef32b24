"""The import contracts in pyproject.toml ([tool.importlinter]) hold."""

from __future__ import annotations

import ast
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_import_contracts_are_kept() -> None:
    """Layers, I/O-library owners, the simulator's isolation and no cycles: lint-imports passes."""
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_every_module_has_a_layer() -> None:
    """Each top-level module and package of otp_bot is named in the layers contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    placed = named | {name.rsplit(".", 1)[0] for name in named}  # a package split by module
    children = {
        f"otp_bot.{info.name}"
        for info in pkgutil.iter_modules([str(ROOT / "otp_bot")])
        if info.name != "__init__"
    }
    assert children - placed == set(), "add these modules to [tool.importlinter] layers"


LONG_MODULE = 250
# How a long module's docstring says why it is long: "(Over 250 lines: ...".
SAYS_WHY = re.compile(r"(?:over|about|longer than) \d+ lines", re.IGNORECASE)


def test_long_modules_say_why() -> None:
    """A module over ~250 lines gives the reason in its docstring (style: split first)."""
    unexplained = []
    for path in sorted((ROOT / "otp_bot").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > LONG_MODULE:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if not SAYS_WHY.search(doc):
                unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == [], "split these, or say in the docstring why they are long"


# Documents that are not in the repository: the code cites docs/ pages instead.
OUTSIDE = re.compile(r"\bdesign\.md\b|\bcontract/")


def test_code_cites_only_pages_in_the_repository() -> None:
    """No comment or docstring sends the reader to design.md or contract/ (not shipped)."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "otp_bot").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == [], "cite docs/contract.md, docs/lifecycle.md or docs/trust.md"
