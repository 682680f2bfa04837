"""Recording status callbacks as Twilio sends them: form-encoded, signed with X-Twilio-Signature."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import httpx

from callvault.twilio.signature import compute_signature
from callvault.twilio.simulator.responses import recording_uri, rfc2822
from callvault.twilio.simulator.state import SimRecording

# TWILIO.md: ErrorCode accompanies `absent` (16101 too short / 16102 silent) and `failed`.
_DEFAULT_ERROR_CODES = {"absent": 16101, "failed": 16105}


def recording_status_params(recording: SimRecording, *, status: str, api_base_url: str) -> dict[str, str]:
    """The form fields of Twilio's recordingStatusCallback for ``recording`` in ``status``."""
    params = {
        "AccountSid": recording.account_sid,
        "CallSid": recording.call_sid,
        "RecordingSid": recording.sid,
        # No extension: the receiver appends .wav/.mp3 (TWILIO.md).
        "RecordingUrl": api_base_url.rstrip("/") + recording_uri(recording.account_sid, recording.sid),
        "RecordingStatus": status,
        "RecordingDuration": str(recording.duration) if status == "completed" else "0",
        "RecordingChannels": str(recording.channels),
        "RecordingStartTime": rfc2822(recording.date_created),
        "RecordingSource": recording.source,
    }
    if recording.conference_sid:
        params["ConferenceSid"] = recording.conference_sid
    if status in _DEFAULT_ERROR_CODES:
        params["ErrorCode"] = str(recording.error_code or _DEFAULT_ERROR_CODES[status])
    return params


def send_status_callback(
    callback_url: str,
    *,
    auth_token: str,
    params: Mapping[str, str],
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST ``params`` form-encoded to ``callback_url``, signed the way Twilio signs: the full URL as called
    (query string included) plus the sorted parameters, HMAC-SHA1 under the account's auth token."""
    signature = compute_signature(auth_token=auth_token, url=callback_url, params=dict(params))
    headers = {
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
    }
    if client is not None:
        return client.post(callback_url, data=dict(params), headers=headers)
    with httpx.Client(timeout=15.0) as own_client:  # Twilio gives a webhook 15 s in total
        return own_client.post(callback_url, data=dict(params), headers=headers)
