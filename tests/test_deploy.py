"""deploy/: the systemd unit verifies and is hardened, the Dockerfile, compose
file and Kubernetes manifests carry the fields that matter, and every secret
or setting they hand the bot is one the bot really reads."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from otp_bot.config import Settings, load_settings
from otp_bot.control.client import ControlClient
from tests.harness import Daemon, running_stack

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "otp-bot@.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
SECRET_FIELDS = {"api_key", "imap_password", "control_token"}
# The goal for `systemd-analyze security --offline=yes`.
EXPOSURE_GOAL = 2.0


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTP_BOT_* or systemd directories from the outside environment."""
    for name in list(os.environ):
        if name.startswith("OTP_BOT_") or name in {"CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"}:
            monkeypatch.delenv(name)


def process_env() -> dict[str, str]:
    """A clean environment for a child process that imports otp_bot from this tree."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    return env | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the bot builds them from this process environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


# --- systemd --------------------------------------------------------------------


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, duplicates kept in order."""
    entries, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_values(key: str) -> list[str]:
    return [v for _, k, v in unit_entries(UNIT.read_text()) if k == key]


def seconds(duration: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+)\s*([a-z]*)", duration):
        total += int(number) * units[unit]
    return total


def verify(
    unit_text: str, tmp_path: Path, dropin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on instance "test" of the template, in a temp root.

    verify refuses a unit whose ExecStart binary is missing, so the root gets
    an executable stub at that path (only this test creates it), plus a copy
    of the system's unit files for the targets the unit names.
    """
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: install Debian's systemd package")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / UNIT.name).write_text(unit_text)
    if dropin is not None:
        (units / f"{UNIT.name}.d").mkdir()
        (units / f"{UNIT.name}.d" / "override.conf").write_text(dropin)
    for _, key, value in unit_entries(unit_text):
        if key in ("ExecStart", "ExecReload"):
            binary = root / value.split()[0].lstrip("-@:+!").lstrip("/")
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("#!/bin/sh\nexit 0\n")
            binary.chmod(0o755)
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "otp-bot@test.service"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit and prints nothing (warnings count)."""
    done = verify(UNIT.read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@pytest.mark.parametrize(
    ("good", "bad"),
    [("Type=notify", "Type=notfy"), ("PrivateTmp=yes", "PrivatTmp=yes")],
)
def test_verify_reports_a_broken_unit(good: str, bad: str, tmp_path: Path) -> None:
    """The verify check fails on a bad value or an unknown key (systemd only warns)."""
    text = UNIT.read_text()
    assert good in text
    done = verify(text.replace(good, bad), tmp_path)
    assert done.stderr.strip() != ""


def test_docs_oauth2_dropin_verifies(tmp_path: Path) -> None:
    """The systemd guide's drop-in for OAuth2 accounts is a valid override of the unit."""
    guide = (ROOT / "docs" / "systemd.md").read_text()
    match = re.search(r"\*\*OAuth2 \(XOAUTH2\) accounts\*\*.*?```ini\n(.*?)```", guide, re.S)
    assert match, "docs/systemd.md lost the OAuth2 drop-in"
    assert "LoadCredential=\n" in match.group(1)
    done = verify(UNIT.read_text(), tmp_path, dropin=match.group(1))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_docs_env_dir_dropin_verifies(tmp_path: Path) -> None:
    """The systemd guide's drop-in for an --env-dir instance is a valid override of the unit."""
    guide = (ROOT / "docs" / "systemd.md").read_text()
    match = re.search(r"\*\*an `--env-dir` instance\*\*.*?```ini\n(.*?)```", guide, re.S)
    assert match, "docs/systemd.md lost the --env-dir drop-in"
    assert "--env-dir /etc/otp-bot/%i.d" in match.group(1)
    done = verify(UNIT.read_text(), tmp_path, dropin=match.group(1))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_exposure_score_meets_goal() -> None:
    """bench/systemd_security.py prints an exposure of at most 2.0 and exits 0."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "systemd_security.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    match = re.search(r"^exposure: (\d+\.\d)", done.stdout, re.MULTILINE)
    assert match, done.stdout + done.stderr
    print(match.group(0))
    assert float(match.group(1)) <= EXPOSURE_GOAL
    assert done.returncode == 0


def test_unit_life_cycle_settings() -> None:
    """Template per account, notify + watchdog beyond the idle interval, bounded restarts."""
    assert unit_values("Type") == ["notify"]
    assert unit_values("EnvironmentFile") == ["/etc/otp-bot/%i.env"]
    assert unit_values("StateDirectory") == ["otp-bot/%i"]
    assert unit_values("Restart") == ["on-failure"]
    assert unit_values("StartLimitBurst")
    assert unit_values("StartLimitIntervalSec")
    assert unit_values("ExecStart")[0].endswith("otp-bot run")
    assert unit_values("ExecReload") == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads
    idle = Settings.model_fields["imap_idle_interval"].default
    # Progress comes at least every idle interval; allow one late wake-up.
    assert seconds(unit_values("WatchdogSec")[0]) >= 2 * idle
    stop = seconds(unit_values("TimeoutStopSec")[0])
    assert stop >= 10  # the daemon needs about 3 s


def test_unit_hardening() -> None:
    """DynamicUser, read-only OS, syscall filter; only the address families the bot needs."""
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "SystemCallFilter": "@system-service",
        "CapabilityBoundingSet": "",
    }.items():
        assert value in unit_values(key), key
    families = set(" ".join(unit_values("RestrictAddressFamilies")).split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX"}  # IMAP/API, sd_notify
    assert not unit_values("IPAddressDeny")  # the bot must reach any API/IMAP host


def test_credentials_are_read_by_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each LoadCredential= ID names a secret setting the bot reads from $CREDENTIALS_DIRECTORY."""
    ids = [value.split(":", 1)[0] for value in unit_values("LoadCredential")]
    assert {"OTP_BOT_API_KEY", "OTP_BOT_IMAP_PASSWORD"} <= set(ids)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for number, credential in enumerate(ids):
        assert credential.removeprefix("OTP_BOT_").lower() in SECRET_FIELDS
        # A trailing newline (`echo secret > file`) is not part of the secret.
        (credentials / credential).write_text(f"secret-{number}-from-file\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = settings_from(
        {"OTP_BOT_ACCOUNT_ID": "acc_1", "OTP_BOT_IMAP_HOST": "imap.example.com"}
        | {"OTP_BOT_IMAP_USER": "bot@example.com"},
        monkeypatch,
    )
    for number, credential in enumerate(ids):
        value = getattr(settings, credential.removeprefix("OTP_BOT_").lower())
        assert value.get_secret_value() == f"secret-{number}-from-file"


def unit_environment(account_env: Path, tmp_path: Path) -> dict[str, str]:
    """The environment systemd gives the daemon for this account, as the unit says.

    ``Environment=`` lines, then the env file (which wins) without secrets or
    state directory, ``$CREDENTIALS_DIRECTORY`` holding one file per
    ``LoadCredential=`` ID, and ``$STATE_DIRECTORY``.
    """
    values = dict(
        line.split("=", 1) for line in account_env.read_text().splitlines() if "=" in line
    )
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for value in unit_values("LoadCredential"):
        name = value.split(":", 1)[0]
        (credentials / name).write_text(values.pop(name) + "\n")
    values.pop("OTP_BOT_STATE_DIR")
    (tmp_path / "state").mkdir()
    unit_env = dict(item.split("=", 1) for item in unit_values("Environment"))
    return {
        **process_env(),
        **unit_env,
        **values,
        "CREDENTIALS_DIRECTORY": str(credentials),
        "STATE_DIRECTORY": str(tmp_path / "state"),
        # 1 s: a WATCHDOG=1 every 0.5 s while the mailbox loop progresses.
        "WATCHDOG_USEC": "1000000",
    }


@pytest.mark.dovecot
def test_daemon_runs_as_the_unit_starts_it(tmp_path: Path) -> None:
    """Secrets only as credential files, state in $STATE_DIRECTORY: READY, WATCHDOG, a
    draft published, SIGTERM -> STOPPING and exit 0."""
    assert unit_values("ExecStart")[0].split()[1:] == ["run"]  # no --env-file: all from env
    with running_stack(["bot@example.test"]) as stack:
        account = stack.add_account("acc_unit", "bot@example.test")
        env = unit_environment(account.env_file, tmp_path)
        assert "OTP_BOT_API_KEY" not in env
        daemon = Daemon(
            "daemon (unit environment)",
            [],
            tmp_path / "daemon.log",
            env,
            notify_path=tmp_path / "notify",
            client=ControlClient(account.control_addr, state_dir=tmp_path / "state"),
        )
        stack.daemons.append(daemon)
        daemon.start_ready()
        daemon.client.publish("draft_unit_otp")
        assert daemon.wait_state("draft_unit_otp", "published", "failed")["state"] == "published"
        daemon.wait_notified("WATCHDOG=1", timeout=10)
        assert (tmp_path / "state" / "otp-bot.sqlite3").is_file()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0, daemon.tail()
        daemon.wait_notified("STOPPING=1", timeout=1)


# --- Dockerfile -----------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, args = line.strip().partition(" ")
            result.append((word.upper(), " ".join(args.split())))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def args_of(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [args for instr, args in stage if instr == word]


def test_dockerfile_multi_stage_without_compilers() -> None:
    """A build stage, then a slim final stage that only copies the venv in."""
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    assert args_of(build, "FROM")[0].endswith(" AS build")
    assert "PYTHON_IMAGE=python:3.11-slim" in " ".join(
        args for instr, args in instructions(DOCKERFILE.read_text()) if instr == "ARG"
    )
    final_text = " ".join(args for _, args in final)
    assert not re.search(r"\b(gcc|g\+\+|clang|build-essential|apt-get install)\b", final_text)
    assert [c for c in args_of(final, "COPY") if "--from=build" in c]
    assert not args_of(final, "ADD")


def test_dockerfile_copies_what_the_build_needs() -> None:
    """The build stage copies pyproject.toml, its readme, licence, lock and every package."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"], "deploy/requirements.lock"}
    needed |= set(project["project"]["license-files"])
    needed |= set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    copied = " ".join(args_of(stages()[0], "COPY"))
    for path in needed:
        assert re.search(rf"(^|\s){re.escape(path)}(\s|/|$)", copied), path
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
    for path in needed:
        assert f"!{path}" in ignore or f"!{path}/" in ignore, path


def test_dockerfile_pins_base_and_dependencies() -> None:
    """The base image is pinned by digest; dependencies install from the lock, by hash."""
    args = " ".join(a for i, a in instructions(DOCKERFILE.read_text()) if i == "ARG")
    assert re.search(r"PYTHON_IMAGE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}\b", args)
    runs = " ".join(args_of(stages()[0], "RUN"))
    assert "--require-hashes" in runs
    assert "-r requirements.lock" in runs
    assert "--no-deps ." in runs


def test_dockerfile_runtime_contract() -> None:
    """Numeric non-root user, state volume, exec-form entry point, health check, SIGTERM."""
    final = stages()[-1]
    user = args_of(final, "USER")[-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user)
    env = " ".join(args_of(final, "ENV"))
    state_dir = re.search(r"OTP_BOT_STATE_DIR=(\S+)", env)
    assert state_dir
    assert state_dir.group(1) in args_of(final, "VOLUME")[0]
    assert f"-o {user.split(':')[0]}" in " ".join(args_of(final, "RUN"))  # owned by the user
    health = args_of(final, "HEALTHCHECK")[0]
    assert '["otp-bot", "health"]' in health
    assert "--interval=" in health
    # Exec form: a shell between Docker and the bot would swallow SIGTERM.
    assert args_of(final, "ENTRYPOINT")[0] == '["otp-bot"]'
    assert args_of(final, "STOPSIGNAL") == ["SIGTERM"]


def read_only_root(volume: Path, argv: list[str]) -> list[str]:
    """``argv`` in a mount namespace whose root file system is read-only but ``volume``.

    As root (CI) a plain mount namespace; otherwise a user namespace maps us
    to root inside it, which may remount to read-only but never to writable.
    """
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro / && exec "$@"'
    return ["unshare", *user, "--mount", "--propagation", "private", "sh", "-c", script,
            str(volume), *argv]  # fmt: skip


def image_environment() -> dict[str, str]:
    """The final stage's ENV values (PATH aside: the venv is this test's interpreter)."""
    values = shlex.split(" ".join(args_of(stages()[-1], "ENV")))
    return {k: v for k, _, v in (item.partition("=") for item in values) if k != "PATH"}


@pytest.mark.dovecot
def test_daemon_runs_with_a_read_only_root(tmp_path: Path) -> None:
    """As in the container: only the state volume writable, secrets as files; a draft is
    published, `otp-bot health` (the HEALTHCHECK) exits 0, SIGTERM exits 0."""
    with running_stack(["bot@example.test"]) as stack:
        account = stack.add_account("acc_ro", "bot@example.test")
        env = unit_environment(account.env_file, tmp_path)
        volume = tmp_path / "volume"
        volume.mkdir()
        env |= image_environment() | {"OTP_BOT_STATE_DIR": str(volume)}
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        daemon = Daemon(
            "daemon (read-only root)",
            [],
            tmp_path / "daemon.log",
            env,
            notify_path=tmp_path / "notify",
            client=ControlClient(account.control_addr, state_dir=volume),
        )
        daemon.argv = read_only_root(volume, daemon.argv)
        stack.daemons.append(daemon)
        daemon.start_ready()
        daemon.client.publish("draft_ro_otp")
        assert daemon.wait_state("draft_ro_otp", "published", "failed")["state"] == "published"
        health = read_only_root(volume, [sys.executable, "-m", "otp_bot", "health"])
        done = subprocess.run(
            health, env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert (volume / "otp-bot.sqlite3").is_file()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0, daemon.tail()


def test_demo_dovecot_config_parses() -> None:
    """doveconf accepts the demo mailbox's configuration."""
    doveconf = shutil.which("doveconf") or "/usr/bin/doveconf"
    if not Path(doveconf).exists():
        pytest.fail("doveconf is missing: run `make test`, which installs Dovecot")
    config = DEPLOY / "docker" / "demo" / "dovecot.conf"
    done = subprocess.run(
        [doveconf, "-n", "-c", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "ssl = no" in done.stdout
    assert "listen = 127.0.0.1" in done.stdout


# --- compose --------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def production_compose() -> dict[str, Any]:
    """The commented production variant, uncommented."""
    text = COMPOSE.read_text().split("# services:", 1)[1]
    lines = ["services:"] + [
        line.removeprefix("# ").removeprefix("#") for line in text.splitlines()
    ]
    loaded: dict[str, Any] = yaml.safe_load("\n".join(lines))
    return loaded


def test_compose_demo_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dovecot, simulator and bot share one loopback; the bot's settings validate."""
    services = compose()["services"]
    assert set(services) == {"dovecot", "simulator", "bot"}
    for name in ("simulator", "bot"):
        assert services[name]["network_mode"] == "service:dovecot"
        assert services[name]["read_only"] is True
    bot = services["bot"]
    assert bot["command"] == ["run"]
    assert any(v.endswith(":/var/lib/otp-bot") for v in bot["volumes"])
    settings = settings_from(bot["environment"], monkeypatch)
    assert settings.imap_host == "127.0.0.1"
    users = (DEPLOY / "docker" / "demo" / "users").read_text()
    assert f"{settings.imap_user}:{{PLAIN}}{bot['environment']['OTP_BOT_IMAP_PASSWORD']}" in users


def test_compose_production_variant() -> None:
    """The commented variant parses: secrets as files named like the variables, read-only."""
    prod = production_compose()
    service = next(iter(prod["services"].values()))
    assert service["read_only"] is True
    assert service["environment"]["CREDENTIALS_DIRECTORY"] == "/run/secrets"
    targets = {s["target"] for s in service["secrets"]}
    assert {"OTP_BOT_API_KEY", "OTP_BOT_IMAP_PASSWORD"} <= targets
    assert {t.removeprefix("OTP_BOT_").lower() for t in targets} <= SECRET_FIELDS
    assert {s["source"] for s in service["secrets"]} == set(prod["secrets"])
    assert any(v.endswith(":/var/lib/otp-bot") for v in service["volumes"])
