"""``python -m callvault.twilio.simulator [--host H] [--port N]``: a standalone simulator.

Prints one JSON line (base_url and credentials) on stdout, then serves until SIGINT or SIGTERM. Drive it
over HTTP under ``/_sim/`` with Basic auth AccountSid:AuthToken.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from callvault.twilio.simulator.server import SimulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callvault.twilio.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with SimulatorServer(host=args.host, port=args.port) as server:
        line = {
            "base_url": server.base_url,
            "account_sid": server.account_sid,
            "auth_token": server.auth_token,
            "api_key_sid": server.api_key_sid,
            "api_key_secret": server.api_key_secret,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
