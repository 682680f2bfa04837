import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from callvault.errors import Forbidden
from callvault.playback import signing

KEY = b"k" * 48
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SID = "RE" + "1" * 32


def grant(**changes: object) -> signing.MediaGrant:
    values: dict[str, object] = {
        "recording_sid": SID,
        "key": f"AC{'a' * 32}/2025/03/01/{SID}.wav",
        "content_type": "audio/wav",
        "size": 1234,
        "expires_at": NOW + timedelta(seconds=30),
    }
    values.update(changes)
    return signing.MediaGrant(**values)  # type: ignore[arg-type]


def test_a_token_verifies_to_exactly_the_grant_it_was_signed_for() -> None:
    token = signing.sign(KEY, grant())
    assert signing.verify(KEY, token, now=NOW) == grant()


def test_a_token_fits_one_url_path_segment() -> None:
    token = signing.sign(KEY, grant())
    assert not set(token) & set("/+=?#%")


def test_a_token_is_refused_once_it_expires() -> None:
    token = signing.sign(KEY, grant())
    signing.verify(KEY, token, now=NOW + timedelta(seconds=29))
    with pytest.raises(Forbidden, match="expired"):
        signing.verify(KEY, token, now=NOW + timedelta(seconds=30))


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = signing.sign(b"other" * 10, grant())
    with pytest.raises(Forbidden):
        signing.verify(KEY, token, now=NOW)


def _reencode(token: str, **changes: object) -> str:
    payload, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + mac


@pytest.mark.parametrize(
    "changes",
    [
        {"k": f"AC{'b' * 32}/2025/03/01/{SID}.wav"},  # another object
        {"e": int((NOW + timedelta(days=365)).timestamp())},  # a longer life
        {"z": 10**12},  # a bigger range
        {"t": "text/html"},  # another content type
    ],
)
def test_a_token_whose_payload_was_altered_is_refused(changes: dict[str, object]) -> None:
    forged = _reencode(signing.sign(KEY, grant()), **changes)
    with pytest.raises(Forbidden):
        signing.verify(KEY, forged, now=NOW)


def test_a_token_whose_signature_was_altered_is_refused() -> None:
    token = signing.sign(KEY, grant())
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(Forbidden):
        signing.verify(KEY, flipped, now=NOW)


@pytest.mark.parametrize(
    "token", ["", ".", "abc", "a.b.c", "%%%.%%%", "é.é", "x" * 5000, "eyJ9.AAAA", "..", "a."]
)
def test_malformed_tokens_are_refused_without_an_error_of_another_kind(token: str) -> None:
    with pytest.raises(Forbidden):
        signing.verify(KEY, token, now=NOW)


def test_the_download_name_follows_the_content_type() -> None:
    assert grant().filename == f"{SID}.wav"
    assert grant(content_type="audio/mpeg").filename == f"{SID}.mp3"
