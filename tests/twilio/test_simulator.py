"""The Twilio simulator over real HTTP: Twilio's shapes, auth, faults, the event log and the control API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import pytest

from callvault.twilio.gateway import TwilioGateway
from callvault.twilio.simulator import SimulatorServer

MB = 1024 * 1024


def api(simulator: SimulatorServer, *, key: bool = True) -> httpx.Client:
    auth = (
        (simulator.api_key_sid, simulator.api_key_secret)
        if key
        else (simulator.account_sid, simulator.auth_token)
    )
    return httpx.Client(base_url=simulator.base_url, auth=auth)


def rec_path(simulator: SimulatorServer, sid: str, suffix: str = "") -> str:
    return f"/2010-04-01/Accounts/{simulator.account_sid}/Recordings/{sid}{suffix}"


# -- auth -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [None, ("AC" + "0" * 32, "nope"), "wrong-secret", "auth-token-for-api-key"],
    ids=["none", "unknown-account", "wrong-secret", "mixed-pair"],
)
def test_every_twilio_endpoint_requires_basic_auth(simulator, auth):
    rec = simulator.add_recording(duration_seconds=1)
    if auth == "wrong-secret":
        auth = (simulator.account_sid, "wrong")
    elif auth == "auth-token-for-api-key":
        auth = (simulator.api_key_sid, simulator.auth_token)
    with httpx.Client(base_url=simulator.base_url, auth=auth) as client:
        answers = [
            client.get(rec_path(simulator, rec.sid, ".json")),
            client.get(rec_path(simulator, rec.sid, ".wav")),
            client.delete(rec_path(simulator, rec.sid, ".json")),
            client.get(f"/2010-04-01/Accounts/{simulator.account_sid}/Recordings.json"),
        ]
    assert [answer.status_code for answer in answers] == [401] * 4
    assert answers[0].json()["code"] == 20003
    assert not simulator.recording(rec.sid).deleted
    assert [event.status for event in simulator.events()] == [401] * 4


def test_valid_credentials_for_another_account_path_are_refused(simulator):
    with api(simulator) as client:
        answer = client.get(f"/2010-04-01/Accounts/{'AC' + 'f' * 32}/Recordings.json")
    assert answer.status_code == 401


@pytest.mark.parametrize("key", [True, False], ids=["api-key", "auth-token"])
def test_both_credential_pairs_are_accepted(simulator, key):
    rec = simulator.add_recording(duration_seconds=1)
    with api(simulator, key=key) as client:
        assert client.get(rec_path(simulator, rec.sid, ".json")).status_code == 200


# -- Twilio's shapes --------------------------------------------------------------------------------------


def test_metadata_has_twilios_fields_and_types(simulator):
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    rec = simulator.add_recording(duration_seconds=4, channels=2, date_created=created)
    with api(simulator) as client:
        body = client.get(rec_path(simulator, rec.sid, ".json")).json()
    expected_keys = {
        "sid",
        "account_sid",
        "call_sid",
        "conference_sid",
        "date_created",
        "start_time",
        "duration",
        "channels",
        "source",
        "status",
        "track",
        "price",
        "error_code",
        "encryption_details",
        "media_url",
        "uri",
    }
    assert expected_keys <= body.keys()
    assert body["duration"] == "4" and body["channels"] == 2 and body["status"] == "completed"
    assert parsedate_to_datetime(body["date_created"]) == created
    assert body["date_created"].endswith("+0000") or body["date_created"].endswith("GMT")
    assert body["uri"] == rec_path(simulator, rec.sid, ".json")
    assert body["media_url"] == simulator.base_url + rec_path(simulator, rec.sid)


@pytest.mark.parametrize(
    ("suffix", "content_type"), [("", "audio/x-wav"), (".wav", "audio/x-wav"), (".mp3", "audio/mpeg")]
)
def test_media_answers_with_type_and_length(simulator, suffix, content_type):
    rec = simulator.add_recording(size_bytes=10_044)
    with api(simulator) as client:
        answer = client.get(rec_path(simulator, rec.sid, suffix))
    assert answer.headers["content-type"] == content_type
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.content == rec.media_bytes("mp3" if suffix == ".mp3" else "wav")


def test_delete_answers_204_then_twilios_404_and_the_recording_is_gone(simulator):
    rec = simulator.add_recording(duration_seconds=1)
    path = rec_path(simulator, rec.sid, ".json")
    with api(simulator) as client:
        first, second = client.delete(path), client.delete(path)
        fetched, media = client.get(path), client.get(rec_path(simulator, rec.sid, ".wav"))
        soft = client.get(path, params={"IncludeSoftDeleted": "true"})
    assert (first.status_code, first.content) == (204, b"")
    assert second.status_code == 404
    assert second.json() == {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }
    assert (fetched.status_code, media.status_code) == (404, 404)
    assert soft.status_code == 200 and soft.json()["status"] == "deleted"


def test_list_pages_with_twilios_shape_and_filters(simulator):
    days = [datetime(2024, 6, day, 9, tzinfo=UTC) for day in (1, 2, 3, 4)]
    recs = [simulator.add_recording(duration_seconds=1, date_created=day) for day in days]
    other_call = simulator.add_recording(duration_seconds=1, date_created=days[2], call_sid="CA" + "c" * 32)
    path = f"/2010-04-01/Accounts/{simulator.account_sid}/Recordings.json"
    with api(simulator) as client:
        # Twilio's documented inequality form, unencoded in the URL.
        first = client.get(path + "?DateCreated>=2024-06-02&DateCreated<=2024-06-03&PageSize=2").json()
        second = client.get(first["next_page_uri"]).json()
        by_call = client.get(path, params={"CallSid": other_call.call_sid}).json()
        by_day = client.get(path, params={"DateCreated": "2024-06-01"}).json()
    assert {"recordings", "next_page_uri", "page", "page_size", "first_page_uri", "uri"} <= first.keys()
    assert (first["page"], first["page_size"], second["page"]) == (0, 2, 1)
    listed = [item["sid"] for item in first["recordings"] + second["recordings"]]
    assert sorted(listed) == sorted([recs[1].sid, recs[2].sid, other_call.sid])
    assert second["next_page_uri"] is None
    assert [item["sid"] for item in by_call["recordings"]] == [other_call.sid]
    assert [item["sid"] for item in by_day["recordings"]] == [recs[0].sid]


def test_list_paging_is_stable_when_recordings_are_deleted_between_pages(simulator, twilio_gateway):
    recs = [
        simulator.add_recording(duration_seconds=1, date_created=datetime(2024, 6, d, tzinfo=UTC))
        for d in range(1, 7)
    ]
    listed = twilio_gateway.list_recordings(
        account_sid=simulator.account_sid, created_on_or_after=None, created_on_or_before=None, page_size=2
    )
    seen = []
    for meta in listed:
        seen.append(meta.sid)
        twilio_gateway.delete_recording(simulator.account_sid, meta.sid)  # what a reconciler might do
    assert seen == [rec.sid for rec in reversed(recs)]


# -- faults -----------------------------------------------------------------------------------------------


def test_faults_are_consumed_one_per_request_recording_specific_first(simulator):
    rec, other = simulator.add_recording(duration_seconds=1), simulator.add_recording(duration_seconds=1)
    simulator.add_fault("metadata", "server_error", status=503)  # any recording
    simulator.add_fault("metadata", "not_ready", sid=rec.sid, times=2)
    with api(simulator) as client:
        statuses = [client.get(rec_path(simulator, rec.sid, ".json")).status_code for _ in range(4)]
        other_status = client.get(rec_path(simulator, other.sid, ".json")).status_code
    assert statuses == [404, 404, 503, 200]
    assert other_status == 200
    assert [event.fault for event in simulator.events(sid=rec.sid)] == [
        "not_ready",
        "not_ready",
        "server_error",
        None,
    ]


def test_rate_limit_fault_answers_twilios_429(simulator):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("media", "rate_limit", sid=rec.sid, retry_after=9)
    with api(simulator) as client:
        answer = client.get(rec_path(simulator, rec.sid, ".wav"))
    assert answer.status_code == 429 and answer.headers["retry-after"] == "9"
    assert answer.json()["code"] == 20429


def test_wrong_content_type_fault_serves_twilios_xml_error_with_200(simulator):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("media", "wrong_content_type", sid=rec.sid)
    with api(simulator) as client:
        answer = client.get(rec_path(simulator, rec.sid, ".wav"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
    assert b"<TwilioResponse><RestException>" in answer.content


def test_truncate_fault_declares_the_full_length_and_closes_after_half(simulator):
    rec = simulator.add_recording(size_bytes=100_000)
    simulator.add_fault("media", "truncate", sid=rec.sid)
    received = 0
    with api(simulator) as client, client.stream("GET", rec_path(simulator, rec.sid, ".wav")) as answer:
        assert answer.headers["content-length"] == "100000"
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in answer.iter_raw():
                received += len(chunk)
    assert received == 50_000
    (event,) = simulator.events(kind="media")
    assert (event.bytes_sent, event.completed) == (50_000, False)


def test_faults_that_do_not_apply_are_refused(simulator):
    with pytest.raises(ValueError):
        simulator.add_fault("metadata", "redirect")
    with pytest.raises(ValueError):
        simulator.add_fault("delete", "truncate")
    with pytest.raises(ValueError):
        simulator.add_fault("media", "explode")
    with pytest.raises(ValueError):
        simulator.add_fault("media", "server_error", status=502)


def test_fail_rate_is_random_but_reproducible(simulator):
    rec = simulator.add_recording(duration_seconds=1)

    def run() -> list[int]:
        simulator.set_fail_rate(0.5, seed=42)
        with api(simulator) as client:
            return [client.get(rec_path(simulator, rec.sid, ".json")).status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert {200, 429, 500} == set(first)
    simulator.set_fail_rate(0.0)
    with api(simulator) as client:
        assert client.get(rec_path(simulator, rec.sid, ".json")).status_code == 200


# -- events -------------------------------------------------------------------------------------------------


def test_events_are_logged_in_order_with_completion(simulator, twilio_gateway):
    rec = simulator.add_recording(size_bytes=150_000)
    twilio_gateway.fetch_metadata(simulator.account_sid, rec.sid)
    with twilio_gateway.open_media(simulator.account_sid, rec.sid, "wav") as media:
        body = b"".join(media.chunks)
    twilio_gateway.delete_recording(simulator.account_sid, rec.sid)
    events = simulator.events(sid=rec.sid)
    assert [(e.kind, e.method, e.status) for e in events] == [
        ("metadata", "GET", 200),
        ("media", "GET", 200),
        ("delete", "DELETE", 204),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert all(e.completed and e.t_done is not None and e.t_done >= e.t for e in events)
    media_event = events[1]
    assert media_event.bytes_sent == len(body) == 150_000
    assert media_event.t_done <= events[2].t  # the download had finished before the delete arrived
    assert simulator.events(kind="delete") == [events[2]]


def test_reset_forgets_everything(simulator):
    rec = simulator.add_recording(duration_seconds=1)
    simulator.add_fault("metadata", "not_ready", sid=rec.sid)
    simulator.set_fail_rate(1.0)
    with api(simulator) as client:
        client.get(rec_path(simulator, rec.sid, ".json"))
    simulator.reset()
    assert simulator.events() == [] and simulator.recordings() == []
    again = simulator.add_recording(duration_seconds=1)
    with api(simulator) as client:
        assert client.get(rec_path(simulator, again.sid, ".json")).status_code == 200


# -- scale --------------------------------------------------------------------------------------------------


def test_a_large_recording_streams_with_bounded_memory(simulator):
    rec = simulator.add_recording(size_bytes=32 * MB)
    gateway = TwilioGateway(simulator.twilio_account(), timeout_seconds=10, max_media_bytes=64 * MB)
    tracemalloc.start()
    try:
        received = 0
        with gateway.open_media(simulator.account_sid, rec.sid, "wav") as media:
            for chunk in media.chunks:
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gateway.close()
    assert received == 32 * MB
    # Simulator and gateway both run in this process: together they held a few chunks at most.
    assert peak < 4 * MB


def test_many_concurrent_downloads_are_served(simulator):
    import concurrent.futures

    recs = [simulator.add_recording(size_bytes=200_000) for _ in range(24)]
    gateway = TwilioGateway(simulator.twilio_account(), timeout_seconds=10, max_media_bytes=MB)

    def fetch(rec):
        with gateway.open_media(simulator.account_sid, rec.sid, "wav") as media:
            return b"".join(media.chunks) == rec.media_bytes()

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert all(pool.map(fetch, recs))
    finally:
        gateway.close()


# -- control API and standalone process ---------------------------------------------------------------------


def test_control_api_drives_the_simulator_over_http(simulator):
    auth = (simulator.account_sid, simulator.auth_token)
    with httpx.Client(base_url=simulator.base_url) as client:
        assert client.get("/_sim/health").json() == {"ok": True}
        assert client.get("/_sim/recordings").status_code == 401
        created = client.post(
            "/_sim/recordings",
            json={"duration_seconds": 2, "channels": 2, "date_created": "2024-02-03T04:05:06+00:00"},
            auth=auth,
        )
        sid = created.json()["sid"]
        assert created.status_code == 201 and created.json()["channels"] == 2
        fault = {"kind": "metadata", "fault": "rate_limit", "sid": sid, "retry_after": 5}
        assert client.post("/_sim/faults", json=fault, auth=auth).status_code == 201
        assert client.post("/_sim/faults", json={"kind": "x", "fault": "y"}, auth=auth).status_code == 400
        limited = client.get(rec_path(simulator, sid, ".json"), auth=auth)
        events = client.get("/_sim/events", params={"kind": "metadata"}, auth=auth).json()
        assert client.post("/_sim/fail_rate", json={"rate": 1.0, "seed": 3}, auth=auth).status_code == 200
        failing = client.get(rec_path(simulator, sid, ".json"), auth=auth).status_code
        assert client.post("/_sim/reset", auth=auth).status_code == 200
        after_reset = client.get("/_sim/recordings", auth=auth).json()
    assert simulator.recording(sid) is None  # reset reached the in-process state
    assert limited.status_code == 429
    assert [(e["sid"], e["status"], e["fault"]) for e in events] == [(sid, 429, "rate_limit")]
    assert failing in (429, 500)
    assert after_reset == []


def test_standalone_simulator_prints_its_address_and_credentials():
    process = subprocess.Popen(
        [sys.executable, "-m", "callvault.twilio.simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        info = json.loads(process.stdout.readline())
        auth = (info["account_sid"], info["auth_token"])
        with httpx.Client(base_url=info["base_url"], auth=auth) as client:
            created = client.post("/_sim/recordings", json={"size_bytes": 1044}).json()
            media = client.get(f"/2010-04-01/Accounts/{info['account_sid']}/Recordings/{created['sid']}.wav")
        assert media.status_code == 200 and len(media.content) == 1044 and media.content[:4] == b"RIFF"
        assert info["api_key_sid"].startswith("SK") and info["api_key_secret"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_head_on_media_answers_headers_without_streaming_the_body(simulator):
    rec = simulator.add_recording(size_bytes=64 * MB)
    with api(simulator) as client:
        answer = client.head(rec_path(simulator, rec.sid, ".wav"))
    assert answer.status_code == 200 and answer.headers["content-length"] == str(64 * MB)
    (event,) = simulator.events(kind="media")
    assert (event.method, event.bytes_sent) == ("HEAD", 0)
