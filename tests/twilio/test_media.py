"""Media downloads against upstream replies the simulator never gives, from a scripted loopback server."""

from __future__ import annotations

import base64

import pytest

from callvault.errors import NotAudio, TwilioError
from callvault.twilio.gateway import TwilioAccount, TwilioGateway
from tests.twilio.oddserver import OddServer, Scripted

AC = "AC" + "1" * 32
RE = "RE" + "2" * 32
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100)
MP3_FRAME = bytes((0xFF, 0xFB, 0x18, 0xC4)) + bytes(140)
XML = (
    b"<?xml version='1.0'?><TwilioResponse><RestException><Code>20404</Code></RestException></TwilioResponse>"
)


@pytest.fixture
def odd():
    with OddServer() as server:
        yield server


def gateway_for(base_url: str, *, max_bytes: int = 1 << 20) -> TwilioGateway:
    account = TwilioAccount(AC, "token", "SK" + "3" * 32, "key-secret", base_url)
    return TwilioGateway(account, timeout_seconds=5.0, max_media_bytes=max_bytes)


def fetch(base_url: str, media_format: str = "wav", **kwargs) -> tuple[str, bytes]:
    gateway = gateway_for(base_url, **kwargs)
    try:
        with gateway.open_media(AC, RE, media_format) as media:
            return media.content_type, b"".join(media.chunks)
    finally:
        gateway.close()


def expected_auth() -> str:
    return "Basic " + base64.b64encode(("SK" + "3" * 32 + ":key-secret").encode()).decode()


def test_the_url_is_built_from_the_base_and_sids_only(odd):
    odd.script.append(Scripted(headers={"Content-Type": "audio/x-wav"}, body=WAV))
    assert fetch(odd.base_url) == ("audio/wav", WAV)
    assert odd.seen[0].path == f"/2010-04-01/Accounts/{AC}/Recordings/{RE}.wav"
    assert odd.seen[0].authorization == expected_auth()


@pytest.mark.parametrize("content_type", ["audio/wave", "audio/wav; charset=binary", "AUDIO/X-WAV"])
def test_wav_content_types_are_normalised(odd, content_type):
    odd.script.append(Scripted(headers={"Content-Type": content_type}, body=WAV))
    assert fetch(odd.base_url)[0] == "audio/wav"


@pytest.mark.parametrize(
    "body", [b"ID3\x03\x00\x00\x00\x00\x00\x00" + MP3_FRAME, MP3_FRAME * 3], ids=["id3", "frame-sync"]
)
def test_mp3_is_recognised_by_id3_tag_or_frame_sync(odd, body):
    odd.script.append(Scripted(headers={"Content-Type": "audio/mp3"}, body=body))
    assert fetch(odd.base_url, "mp3") == ("audio/mpeg", body)


@pytest.mark.parametrize(
    ("media_format", "content_type", "body"),
    [
        ("wav", "audio/x-wav", XML),  # audio type over Twilio's XML error document
        ("wav", "audio/x-wav", b"RIFF"),  # too short to be a WAV
        ("mp3", "audio/mpeg", b'{"code": 20404, "status": 404}'),
        ("wav", "audio/mpeg", MP3_FRAME),  # asked for WAV, got MP3
        ("wav", "application/json", WAV),
        ("wav", "", WAV),
    ],
)
def test_non_audio_is_refused(odd, media_format, content_type, body):
    headers = {"Content-Type": content_type} if content_type else {}
    odd.script.append(Scripted(headers=headers, body=body))
    with pytest.raises(NotAudio):
        fetch(odd.base_url, media_format)


def test_body_without_content_length_is_counted_against_the_limit(odd):
    body = WAV + bytes(300_000)
    odd.script.append(Scripted(headers={"Content-Type": "audio/x-wav"}, body=body, chunked=True))
    with pytest.raises(TwilioError, match="exceeds the limit"):
        fetch(odd.base_url, max_bytes=200_000)
    odd.script.append(Scripted(headers={"Content-Type": "audio/x-wav"}, body=body, chunked=True))
    assert fetch(odd.base_url, max_bytes=400_000)[1] == body


def test_same_origin_redirect_keeps_credentials_and_other_ports_do_not_get_them(odd):
    with OddServer() as other:
        odd.script.append(Scripted(status=302, headers={"Location": "/moved/1"}))
        odd.script.append(Scripted(status=307, headers={"Location": other.base_url + "/cdn/1"}))
        other.script.append(Scripted(headers={"Content-Type": "audio/x-wav"}, body=WAV))
        assert fetch(odd.base_url)[1] == WAV
        assert [seen.authorization for seen in odd.seen] == [expected_auth(), expected_auth()]
        assert odd.seen[1].path == "/moved/1"
        assert [(seen.path, seen.authorization) for seen in other.seen] == [("/cdn/1", None)]


def test_redirect_loops_end_with_twilio_error(odd):
    for _ in range(10):
        odd.script.append(Scripted(status=302, headers={"Location": "/again"}))
    with pytest.raises(TwilioError, match="more than 5"):
        fetch(odd.base_url)
    assert len(odd.seen) == 6


def test_redirect_to_a_non_http_scheme_is_refused(odd):
    odd.script.append(Scripted(status=302, headers={"Location": "file:///etc/passwd"}))
    with pytest.raises(TwilioError, match="non-HTTP"):
        fetch(odd.base_url)
