"""The ``callvault`` command. Every command builds the settings once and passes them down; errors from
callvault's error tree end the command with one line on stderr and the error's exit code, never a
traceback. One module per command group; importing them registers their commands on ``app``."""

from __future__ import annotations

import sys

from callvault.cli import audit, ops, people, recordings, serving
from callvault.cli.base import app, err
from callvault.errors import CallvaultError

__all__ = ["app", "audit", "main", "ops", "people", "recordings", "serving"]


def main() -> None:
    try:
        app()
    except CallvaultError as exc:  # raised outside a command body (e.g. option callbacks)
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(exc.exit_code)
