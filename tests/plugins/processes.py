"""Real ``callvault`` processes for end-to-end tests: started with an environment, health-checked,
killed for real, logs kept in the test's tmp_path."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CALLVAULT = [sys.executable, "-m", "callvault"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CallvaultProcess:
    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CALLVAULT_")} | env
        self.proc = subprocess.Popen(
            [*CALLVAULT, *args],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, base_url: str, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"callvault {self.args} exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"callvault {self.args} did not become healthy:\n{self.logs()}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        self.kill()
        self._log.close()


def run_cli(
    args: list[str], *, env: dict[str, str], input_text: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CALLVAULT_")} | env
    return subprocess.run(  # noqa: PLW1510 - callers check returncode themselves
        [*CALLVAULT, *args], env=full_env, input=input_text, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def callvault_processes(tmp_path: Path) -> Iterator[list[CallvaultProcess]]:
    """Processes appended here are killed at the end of the test, whatever happened."""
    started: list[CallvaultProcess] = []
    yield started
    for process in started:
        process.stop()
