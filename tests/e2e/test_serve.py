"""A real ``callvault serve`` receives signed callbacks; every recording ends stored, verified, and deleted at
the simulator, each DELETE after the complete object was in the store."""

from __future__ import annotations

import hashlib
import json

import httpx

from callvault.twilio.simulator.callbacks import recording_status_params, send_status_callback
from tests.e2e.conftest import Deployment
from tests.plugins.processes import run_cli


def test_serve_takes_custody_of_every_signed_callback(deployment: Deployment) -> None:
    sim = deployment.simulator
    _, base = deployment.serve()
    recs = [sim.add_recording(size_bytes=64_000 + i * 1000) for i in range(5)]
    with httpx.Client() as client:
        for rec in recs:
            for status in ("in-progress", "completed", "completed"):  # a duplicate, as Twilio may send
                params = recording_status_params(rec, status=status, api_base_url=sim.base_url)
                response = send_status_callback(
                    f"{base}/twilio/recording-status", auth_token=sim.auth_token, params=params, client=client
                )
                assert response.status_code == 204
    for rec in recs:
        row = deployment.wait_status(rec.sid, "stored")
        assert row.twilio_deleted_at is not None
        assert row.sha256 == rec.sha256("wav")
        assert row.storage_key is not None
        assert deployment.store_root is not None
        stored = (deployment.store_root / row.storage_key).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == rec.sha256("wav")
        assert (deployment.store_root / row.storage_key).stat().st_mode & 0o777 == 0o600
    deployment.witness.assert_custody_held()
    assert sorted(deployment.witness.deletions) == sorted(r.sid for r in recs)

    shown = run_cli(["recordings", "show", recs[0].sid, "--json"], env=deployment.env)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    for key in (
        "sid",
        "account_sid",
        "call_sid",
        "status",
        "duration_seconds",
        "channels",
        "content_type",
        "size_bytes",
        "sha256",
        "storage_key",
        "created_at",
        "stored_at",
        "twilio_deleted_at",
        "attempts",
        "last_error",
    ):
        assert key in view
    assert (view["status"], view["sha256"], view["content_type"]) == (
        "stored",
        recs[0].sha256("wav"),
        "audio/wav",
    )


def test_a_forged_callback_to_serve_is_refused_and_changes_nothing(deployment: Deployment) -> None:
    sim = deployment.simulator
    _, base = deployment.serve("--no-worker")
    rec = sim.add_recording(size_bytes=10_000)
    params = recording_status_params(rec, status="completed", api_base_url=sim.base_url)
    response = send_status_callback(
        f"{base}/twilio/recording-status", auth_token="wrong-token", params=params
    )
    assert response.status_code == 403
    assert "Traceback" not in response.text
    listed = run_cli(["recordings", "list", "--json"], env=deployment.env)
    assert listed.returncode == 0 and listed.stdout.strip() == ""
    assert sim.events() == []


def test_cli_errors_are_one_line_without_traceback(deployment: Deployment) -> None:
    bad = run_cli(["recordings", "show", "RE../../etc"], env=deployment.env)
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr and "RecordingSid" in bad.stderr
    broken = run_cli(["recordings", "list"], env={**deployment.env, "CALLVAULT_STORAGE_URL": "ftp://x"})
    assert broken.returncode != 0
    assert broken.stderr.strip().count("\n") == 0 and "CALLVAULT_STORAGE_URL" in broken.stderr
