"""Signed recording status callbacks, and the demo caller that sends them."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest

from callvault.errors import SignatureInvalid
from callvault.twilio.signature import validate_signature
from callvault.twilio.simulator.callbacks import recording_status_params, send_status_callback
from callvault.twilio.simulator.demo import DemoCaller


@dataclass
class Delivery:
    url: str
    signature: str | None
    content_type: str
    form: dict[str, list[str]]
    probe: str | None


class Receiver:
    """A loopback webhook receiver that records what it was sent and answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.deliveries: list[Delivery] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                host = self.headers["Host"]
                receiver.deliveries.append(
                    Delivery(
                        url=f"http://{host}{self.path}",
                        signature=self.headers.get("X-Twilio-Signature"),
                        content_type=self.headers.get("Content-Type", ""),
                        form=parse_qs(body, keep_blank_values=True),
                        probe=self.headers.get("X-Probe"),
                    )
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/twilio/recording-status"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_status_params_carry_twilios_fields(simulator):
    created = datetime(2024, 7, 1, 10, 0, 0, tzinfo=UTC)
    rec = simulator.add_recording(duration_seconds=6, channels=2, date_created=created, source="DialVerb")
    params = recording_status_params(rec, status="completed", api_base_url=simulator.base_url + "/")
    assert params == {
        "AccountSid": simulator.account_sid,
        "CallSid": rec.call_sid,
        "RecordingSid": rec.sid,
        "RecordingUrl": simulator.recording_url(rec.sid),
        "RecordingStatus": "completed",
        "RecordingDuration": "6",
        "RecordingChannels": "2",
        "RecordingStartTime": "Mon, 01 Jul 2024 10:00:00 +0000",
        "RecordingSource": "DialVerb",
    }
    assert not params["RecordingUrl"].endswith((".wav", ".mp3", ".json"))


def test_absent_recordings_carry_an_error_code(simulator):
    rec = simulator.add_recording(duration_seconds=0, status="absent", error_code=16102)
    assert recording_status_params(rec, status="absent", api_base_url="http://x")["ErrorCode"] == "16102"
    unspecified = simulator.add_recording(duration_seconds=0, status="absent")
    assert (
        recording_status_params(unspecified, status="absent", api_base_url="http://x")["ErrorCode"] == "16101"
    )


def test_callback_is_form_encoded_and_signed_over_the_url_with_its_query(simulator, receiver):
    rec = simulator.add_recording(duration_seconds=2)
    url = receiver.url + "?tenant=a%20b&x=1"
    params = recording_status_params(rec, status="completed", api_base_url=simulator.base_url)
    answer = send_status_callback(url, auth_token=simulator.auth_token, params=params)
    assert answer.status_code == 204
    (delivery,) = receiver.deliveries
    assert delivery.url == url
    assert delivery.content_type == "application/x-www-form-urlencoded"
    form = {name: values[0] for name, values in delivery.form.items()}
    assert form == params
    validate_signature(auth_token=simulator.auth_token, url=url, params=form, signature=delivery.signature)
    with pytest.raises(SignatureInvalid):
        validate_signature(
            auth_token=simulator.auth_token, url=receiver.url, params=form, signature=delivery.signature
        )


def test_callback_uses_the_given_client(simulator, receiver):
    rec = simulator.add_recording(duration_seconds=1)
    params = recording_status_params(rec, status="in-progress", api_base_url=simulator.base_url)
    with httpx.Client(headers={"X-Probe": "1"}) as client:
        send_status_callback(receiver.url, auth_token=simulator.auth_token, params=params, client=client)
    assert receiver.deliveries[0].form["RecordingStatus"] == ["in-progress"]
    assert receiver.deliveries[0].probe == "1"


def test_demo_caller_places_calls_with_signed_callbacks_in_order(simulator, receiver):
    caller = DemoCaller(simulator, callback_url=receiver.url, calls=2, interval_seconds=0.01).start()
    caller.join(timeout=20)
    assert len(caller.placed) == 2
    statuses = [(d.form["RecordingSid"][0], d.form["RecordingStatus"][0]) for d in receiver.deliveries]
    first, second = caller.placed
    assert statuses == [
        (first, "in-progress"),
        (first, "completed"),
        (second, "in-progress"),
        (second, "completed"),
    ]
    for delivery in receiver.deliveries:
        form = {name: values[0] for name, values in delivery.form.items()}
        validate_signature(
            auth_token=simulator.auth_token, url=receiver.url, params=form, signature=delivery.signature
        )
    for sid in caller.placed:
        rec = simulator.recording(sid)
        assert rec.status == "completed" and 3 <= rec.exact_duration <= 8
        completed = next(
            d
            for d in receiver.deliveries
            if d.form["RecordingSid"] == [sid] and d.form["RecordingStatus"] == ["completed"]
        )
        assert completed.form["RecordingUrl"] == [simulator.recording_url(sid)]


def test_demo_caller_retries_a_refused_callback_then_stops_on_request(simulator):
    refusing = Receiver(status=503)
    try:
        caller = DemoCaller(simulator, callback_url=refusing.url, calls=3, interval_seconds=0.01).start()
        pause = threading.Event()
        for _ in range(1000):  # at most ~20 s
            if len(refusing.deliveries) >= 2:
                break
            pause.wait(0.02)
        caller.stop(timeout=5)
        assert not caller.is_alive()
    finally:
        refusing.close()
    # The first callback was tried again after the 503 instead of being dropped, and nothing further was
    # sent or placed after stop().
    statuses = [d.form["RecordingStatus"][0] for d in refusing.deliveries]
    assert len(statuses) >= 2 and set(statuses) == {"in-progress"}
    assert len(caller.placed) == 1
