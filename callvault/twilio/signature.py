"""X-Twilio-Signature: validation of inbound webhooks, and signing for the simulator and tests.

Both directions delegate to ``twilio.request_validator.RequestValidator`` (HMAC-SHA1 over the URL plus the
sorted form parameters); nothing here re-implements the algorithm. What this module adds:

- repeated form keys: ``RequestValidator`` reads a plain ``dict`` value as one value, so a list would be
  hashed as a list (a ``TypeError``); it asks a mapping for ``getall(name)`` first (Flask's MultiDict), so we
  hand it one;
- the URL: Twilio signs the URL it called. Behind a TLS-terminating proxy the app sees ``http://`` and an
  internal host, so the URL is rebuilt from the configured public URL plus the raw path and query exactly as
  received (TWILIO.md: the most reported pitfall).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from twilio.request_validator import RequestValidator

from callvault.errors import SignatureInvalid

FormParams = Mapping[str, str | list[str]]

_INVALID = "invalid X-Twilio-Signature"


class _MultiParams(Mapping[str, str]):
    """Form parameters in the shape ``RequestValidator.get_values`` understands for repeated keys."""

    def __init__(self, params: FormParams) -> None:
        self._values: dict[str, list[str]] = {
            name: list(value) if isinstance(value, list) else [value] for name, value in params.items()
        }

    def getall(self, name: str) -> list[str]:
        return self._values[name]

    def __getitem__(self, name: str) -> str:
        return self._values[name][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def compute_signature(*, auth_token: str, url: str, params: FormParams) -> str:
    """The X-Twilio-Signature Twilio would send for a form POST of ``params`` to ``url``."""
    return str(RequestValidator(auth_token).compute_signature(url, _MultiParams(params)))


def validate_signature(*, auth_token: str, url: str, params: FormParams, signature: str | None) -> None:
    """Return when ``signature`` is Twilio's signature of ``url`` + ``params`` under ``auth_token``.

    ``url`` must be the URL as Twilio called it (see :func:`signed_url`). Like Twilio's own validator, the URL
    is accepted with and without its port. Raises :class:`SignatureInvalid` when the
    signature is missing, empty or wrong; never says which part did not match.
    """
    if not signature or not auth_token:
        raise SignatureInvalid(_INVALID)
    # validate() tries the URL with and without the default port (Twilio is inconsistent about it) and
    # compares the whole string whatever the first difference.
    if not RequestValidator(auth_token).validate(url, _MultiParams(params), signature):
        raise SignatureInvalid(_INVALID)


def signed_url(public_url: str, raw_path: str, raw_query: bytes | str) -> str:
    """The URL Twilio signed: the configured public URL (scheme, host, port and any path prefix) followed by
    the request's path and query string exactly as received, without re-encoding or re-ordering.

    ``raw_path`` is the path the app saw (``/webhooks/twilio/recording``); when the public URL carries a path
    prefix (a reverse proxy mounting the app under ``/callvault``) the prefix is kept in front of it.
    """
    query = raw_query.decode("utf-8", errors="replace") if isinstance(raw_query, bytes) else raw_query
    base = public_url.rstrip("/")
    path = raw_path if raw_path.startswith("/") else "/" + raw_path
    return f"{base}{path}?{query}" if query else f"{base}{path}"
