"""The release artefacts: an sdist and a wheel that install what the repository holds.

Built with ``python -m build`` (without isolation, with the hatchling of the
test environment) into a temporary directory, then read back as archives.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import otp_bot

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def _wheel(dist: Path) -> zipfile.ZipFile:
    (path,) = dist.glob("*.whl")
    return zipfile.ZipFile(path)


def test_wheel_holds_every_module(dist: Path) -> None:
    """Every module of the package, in every subpackage, is in the wheel."""
    names = set(_wheel(dist).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "otp_bot").rglob("*.py")}
    assert len(modules) > 40
    assert modules <= names, sorted(modules - names)
    assert not [n for n in names if n.startswith("tests/")]


def test_wheel_metadata(dist: Path) -> None:
    """Name, the one version, the licence file and the console script are declared."""
    wheel = _wheel(dist)
    info = f"otp_bot-{otp_bot.__version__}.dist-info"
    meta = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert meta["Name"] == "otp-bot"
    assert meta["Version"] == otp_bot.__version__
    assert meta["License-Expression"] == "MIT"
    assert f"{info}/licenses/LICENSE" in wheel.namelist()
    entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert "otp-bot = otp_bot.cli:main" in entry_points


def test_sdist_holds_the_project(dist: Path) -> None:
    """The sdist carries the sources, tests, docs, licence and changelog."""
    (path,) = dist.glob("*.tar.gz")
    top = f"otp_bot-{otp_bot.__version__}"
    with tarfile.open(path) as archive:
        names = set(archive.getnames())
    wanted = ["pyproject.toml", "LICENSE", "CHANGELOG.md", "README.md", "mkdocs.yml"]
    wanted += ["otp_bot/__init__.py", "otp_bot/cli.py", "tests/conftest.py", "docs/index.md"]
    missing = [w for w in wanted if f"{top}/{w}" not in names]
    assert not missing
    assert not [n for n in names if "/.venv/" in n or n.endswith(".pyc")]


def test_changelog_names_the_current_version() -> None:
    """CHANGELOG.md has a section for the version the package declares."""
    assert f"## {otp_bot.__version__} " in (ROOT / "CHANGELOG.md").read_text()


def locked() -> dict[str, tuple[str, int]]:
    """Name -> (pinned version, number of hashes) from deploy/requirements.lock."""
    pins: dict[str, tuple[str, int]] = {}
    name = ""
    for line in (ROOT / "deploy" / "requirements.lock").read_text().splitlines():
        if line and not line[0].isspace() and "==" in line:
            name, _, version = line.split(" ")[0].partition("==")
            pins[canonicalize_name(name)] = (version, 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, count = pins[canonicalize_name(name)]
            pins[canonicalize_name(name)] = (version, count + 1)
    return pins


def test_lock_pins_every_dependency_with_hashes() -> None:
    """Each [project] dependency is pinned in the lock, within its range, with hashes.

    After changing dependencies in pyproject.toml, `make lock` rewrites the lock.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = locked()
    assert pins
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin, f"{requirement.name} is not in deploy/requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pin[0], prereleases=True), (
            f"{requirement.name}=={pin[0]} is outside {requirement.specifier}: run `make lock`"
        )
    assert all(count >= 1 for _, count in pins.values()), "every pin needs --hash lines"
