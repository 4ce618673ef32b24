"""Where the daemon's accounts come from: ``--env-file`` files and the ``--env-dir`` directory.

Each source is read on its own, so one bad file never hides the others: at a
SIGHUP the daemon reads them all again (``Sources.load``) and follows what it
finds; a file that does not load is reported and skipped, and the account it
held keeps running as it was (``service``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from otp_bot.config import Settings
from otp_bot.config_load import load_each, select_shard
from otp_bot.errors import ConfigError

# Files in --env-dir that are accounts: NAME.env, not hidden (editors' swap
# and backup files, "foo.env~" or ".foo.env.swp", are ignored).
ENV_SUFFIX = ".env"
# More files than this in one directory is a mistake, not a team.
MAX_ENV_FILES = 5000
# The source name of the process environment alone (no file given).
ENVIRONMENT = "environment"


@dataclass(frozen=True, slots=True)
class Sources:
    env_files: tuple[Path, ...] = ()
    env_dir: Path | None = None
    log_level: str | None = None  # --log-level, over every file's OTP_BOT_LOG_LEVEL

    def paths(self) -> list[Path | None]:
        """Every source in order: the env files, then the directory's files by name."""
        found: list[Path | None] = list(self.env_files)
        if self.env_dir is not None:
            found += env_dir_files(self.env_dir)
        return found if found or self.env_dir is not None else [None]

    def load(self) -> tuple[list[tuple[str, Settings]], list[tuple[str, str]]]:
        """Read every source: (source, settings) for each good one, (source, error) else."""
        good: list[tuple[str, Settings]] = []
        bad: list[tuple[str, str]] = []
        try:
            paths = self.paths()
        except ConfigError as exc:
            return good, [(str(self.env_dir), str(exc))]
        overrides = {"log_level": self.log_level} if self.log_level else {}
        # One pass: the environment and credential files are read once for all.
        for path, result in zip(paths, load_each(paths, **overrides), strict=True):
            name = str(path) if path is not None else ENVIRONMENT
            if isinstance(result, ConfigError):
                bad.append((name, str(result)))
            else:
                good.append((name, result))
        try:  # OTP_BOT_SHARD: another replica's accounts are skipped
            return select_shard(good), bad
        except ConfigError as exc:  # every account is another replica's
            return [], [*bad, (ENVIRONMENT, str(exc))]


def env_dir_files(directory: Path) -> list[Path]:
    """``*.env`` regular files of ``directory``, sorted (ConfigError if unreadable)."""
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise ConfigError(f"--env-dir {directory}: cannot list it: {exc.strerror}") from None
    files = [
        p for p in entries if p.suffix == ENV_SUFFIX and not p.name.startswith(".") and p.is_file()
    ]
    if len(files) > MAX_ENV_FILES:
        raise ConfigError(f"--env-dir {directory}: more than {MAX_ENV_FILES} env files")
    return files
