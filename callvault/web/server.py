"""``callvault serve``: uvicorn around ``create_app``, embedded worker threads, and demo mode."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack

import uvicorn

from callvault.logs import configure_logging
from callvault.pipeline.failpoints import Failpoints
from callvault.pipeline.worker import Worker
from callvault.runtime import audit_twilio_delete, build_context, demo_simulator, require_current_schema
from callvault.settings import Settings
from callvault.web.app import create_app

log = logging.getLogger(__name__)

DEMO_BANNER = """
==============================================================================
 DEMO MODE: no Twilio credentials are set. callvault runs against its built-in
 Twilio simulator ({simulator}), which places {calls} simulated calls.
 Open {url} to watch; create a login first with:
     .venv/bin/callvault users add you@example.com --role admin
 For real recordings set CALLVAULT_TWILIO_ACCOUNT_SID, CALLVAULT_TWILIO_AUTH_TOKEN,
 CALLVAULT_PUBLIC_URL (and preferably an API key): see docs/configuration.md.
==============================================================================
"""


def run_server(settings: Settings, *, with_worker: bool) -> None:
    configure_logging(settings.log_level)
    with ExitStack() as stack:
        account = None
        demo = None
        if settings.demo:
            demo = stack.enter_context(demo_simulator(settings))
            settings, account = demo.settings, demo.account
        ctx = build_context(settings, account=account)
        stack.callback(ctx.db.dispose)
        require_current_schema(ctx.db)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(ctx), host=settings.host, port=settings.port, log_config=None, server_header=False
            )
        )
        if with_worker:
            worker = Worker(
                ctx,
                concurrency=settings.worker_concurrency,
                failpoints=Failpoints(settings.failpoints),
                audit=audit_twilio_delete,
            )
            worker.start()
            worker.start_reconciler(account_sid=next(iter(ctx.auth_tokens)))
            stack.callback(worker.stop, timeout=settings.lease_seconds)
        if demo is not None:
            print(
                DEMO_BANNER.format(
                    simulator=demo.simulator.base_url, calls=settings.demo_calls, url=settings.public_url
                ),
                flush=True,
            )
            threading.Thread(target=_place_demo_calls, args=(server, demo, settings), daemon=True).start()
        log.info("callvault listening on %s (storage %s)", settings.public_url, ctx.store.description)
        server.run()


def _place_demo_calls(server: uvicorn.Server, demo: object, settings: Settings) -> None:
    from callvault.runtime import Demo
    from callvault.twilio.simulator.demo import DemoCaller

    assert isinstance(demo, Demo)
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.1)
    caller = DemoCaller(
        demo.simulator,
        callback_url=f"{settings.public_url}/twilio/recording-status",
        calls=settings.demo_calls,
        interval_seconds=4.0,
    )
    caller.start()
