"""The installed ``callvault`` command as a real subprocess, on a fresh SQLite database per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CALLVAULT_BIN = Path(sys.executable).with_name("callvault")


@dataclass
class Cli:
    """Runs ``callvault ARGS…`` with CALLVAULT_DATA_DIR and CALLVAULT_DATABASE_URL set to this test's."""

    env: dict[str, str]
    database_url: str

    def __call__(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: PLW1510 - callers check returncode themselves
            [str(CALLVAULT_BIN), *args],
            env=self.env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run and require exit 0 (showing the output otherwise)."""
        result = self(*args, input_text=input_text)
        assert result.returncode == 0, f"callvault {' '.join(args)} -> {result.returncode}\n{result.stderr}"
        return result


def _cli_for(data_dir: Path) -> Cli:
    url = f"sqlite:///{data_dir / 'callvault.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLVAULT_")}
    env |= {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": url}
    return Cli(env=env, database_url=url)


@pytest.fixture(scope="session")
def cli_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database made once per session by a real ``callvault db upgrade`` (each process start costs
    seconds on a busy machine); every test gets its own copy."""
    data_dir = tmp_path_factory.mktemp("cli-template")
    _cli_for(data_dir).ok("db", "upgrade")
    return data_dir / "callvault.db"


@pytest.fixture
def cli(tmp_path: Path, cli_template: Path) -> Cli:
    """A ``callvault`` runner on a fresh copy of the upgraded database."""
    data_dir = tmp_path / "cli-data"
    data_dir.mkdir()
    shutil.copyfile(cli_template, data_dir / "callvault.db")
    return _cli_for(data_dir)
