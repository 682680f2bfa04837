"""Webhook signature validation against signatures computed the way Twilio computes them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from callvault.errors import SignatureInvalid
from callvault.twilio.signature import compute_signature, signed_url, validate_signature

TOKEN = "12345678901234567890123456789012"
URL = "https://vault.example.com/webhooks/twilio/recording"
PARAMS = {
    "AccountSid": "AC" + "a" * 32,
    "RecordingSid": "RE" + "b" * 32,
    "RecordingStatus": "completed",
    "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE",
}


def twilio_reference_signature(token: str, url: str, params: dict[str, list[str]]) -> str:
    """Twilio's documented algorithm, written out independently of the library, to pin the behaviour."""
    data = url
    for name in sorted(params):
        for value in sorted(params[name]):
            data += name + value
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_computed_signature_matches_twilios_documented_algorithm():
    expected = twilio_reference_signature(TOKEN, URL, {k: [v] for k, v in PARAMS.items()})
    assert compute_signature(auth_token=TOKEN, url=URL, params=PARAMS) == expected


def test_valid_signature_is_accepted():
    signature = twilio_reference_signature(TOKEN, URL, {k: [v] for k, v in PARAMS.items()})
    validate_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)


def test_forged_signature_is_rejected():
    signature = compute_signature(auth_token="another-token-entirely-000000000", url=URL, params=PARAMS)
    with pytest.raises(SignatureInvalid, match="invalid X-Twilio-Signature"):
        validate_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)


def test_tampered_parameter_is_rejected():
    signature = compute_signature(auth_token=TOKEN, url=URL, params=PARAMS)
    tampered = {**PARAMS, "RecordingSid": "RE" + "c" * 32}
    with pytest.raises(SignatureInvalid):
        validate_signature(auth_token=TOKEN, url=URL, params=tampered, signature=signature)


def test_added_parameter_is_rejected():
    signature = compute_signature(auth_token=TOKEN, url=URL, params=PARAMS)
    with pytest.raises(SignatureInvalid):
        validate_signature(auth_token=TOKEN, url=URL, params={**PARAMS, "Extra": "1"}, signature=signature)


@pytest.mark.parametrize("signature", [None, ""])
def test_missing_signature_is_rejected(signature):
    with pytest.raises(SignatureInvalid):
        validate_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)


def test_empty_auth_token_never_validates():
    signature = compute_signature(auth_token="x", url=URL, params=PARAMS)
    with pytest.raises(SignatureInvalid):
        validate_signature(auth_token="", url=URL, params=PARAMS, signature=signature)


def test_query_string_is_part_of_the_signed_url():
    url = URL + "?tenant=a%20b&x=1"
    signature = compute_signature(auth_token=TOKEN, url=url, params=PARAMS)
    validate_signature(auth_token=TOKEN, url=url, params=PARAMS, signature=signature)
    for altered in (URL, URL + "?x=1&tenant=a%20b", URL + "?tenant=a+b&x=1"):
        with pytest.raises(SignatureInvalid):
            validate_signature(auth_token=TOKEN, url=altered, params=PARAMS, signature=signature)


def test_repeated_form_keys_validate_with_every_value_signed():
    params: dict[str, str | list[str]] = {**PARAMS, "Tag": ["zeta", "alpha"]}
    expected = twilio_reference_signature(
        TOKEN, URL, {**{k: [v] for k, v in PARAMS.items()}, "Tag": ["zeta", "alpha"]}
    )
    assert compute_signature(auth_token=TOKEN, url=URL, params=params) == expected
    validate_signature(auth_token=TOKEN, url=URL, params=params, signature=expected)
    with pytest.raises(SignatureInvalid):
        validate_signature(auth_token=TOKEN, url=URL, params={**PARAMS, "Tag": "zeta"}, signature=expected)


def test_url_with_explicit_default_port_validates_either_way():
    signature = compute_signature(auth_token=TOKEN, url="https://vault.example.com:443/hook", params=PARAMS)
    validate_signature(
        auth_token=TOKEN, url="https://vault.example.com/hook", params=PARAMS, signature=signature
    )


def test_https_public_url_behind_http_proxy_rebuilds_the_url_twilio_signed():
    # Twilio called the public https URL; the app, behind a TLS-terminating proxy, saw plain http on an
    # internal address with the same raw path and query.
    public = "https://vault.example.com/"
    twilio_called = "https://vault.example.com/webhooks/twilio/recording?a=1&b=%2F"
    signature = compute_signature(auth_token=TOKEN, url=twilio_called, params=PARAMS)
    rebuilt = signed_url(public, "/webhooks/twilio/recording", b"a=1&b=%2F")
    assert rebuilt == twilio_called
    validate_signature(auth_token=TOKEN, url=rebuilt, params=PARAMS, signature=signature)
    seen_by_app = "http://10.0.0.5:8000/webhooks/twilio/recording?a=1&b=%2F"
    with pytest.raises(SignatureInvalid):
        validate_signature(auth_token=TOKEN, url=seen_by_app, params=PARAMS, signature=signature)


def test_signed_url_keeps_a_public_path_prefix_and_omits_an_empty_query():
    assert signed_url("https://h.example/callvault", "/hook", b"") == "https://h.example/callvault/hook"
    assert signed_url("https://h.example", "/hook", "x=%20") == "https://h.example/hook?x=%20"
