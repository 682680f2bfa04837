"""The one error tree of callvault.

Every error callvault raises on purpose derives from :class:`CallvaultError`. Each class carries the HTTP
status the web layer answers with and the exit code the CLI ends with, so one handler maps them for the web
(``callvault.web.errors``) and one wrapper for the CLI (``callvault.cli``). Services never raise HTTP
exceptions. Messages are safe to show to users: they never contain secrets.

    CallvaultError
    ├── ConfigError                  a bad or contradictory setting (start-up stops)
    ├── InvalidInput                 400: a malformed SID, parameter or form field
    │   ├── InvalidSid
    │   └── PayloadTooLarge          413
    ├── SignatureInvalid             403: a webhook whose X-Twilio-Signature does not verify
    ├── Unauthenticated              401: no or bad credentials
    ├── Forbidden                    403: authenticated, not allowed
    ├── NotFound                     404: unknown (or not visible to this caller) recording, user, token
    ├── Conflict                     409: the request contradicts the current state
    ├── TooManyRequests              429: login throttling
    ├── Unavailable                  503: the database or storage cannot be reached right now
    ├── StorageError                 a storage backend failed (retried by the pipeline)
    │   └── ObjectMissing            the key does not exist in the store
    ├── TwilioError                  Twilio's REST API or media answered something unusable
    │   ├── TwilioRateLimited        429 / 20429: never processed, retry after ``retry_after``
    │   ├── MediaNotReady            404 on media right after the callback (propagation delay)
    │   ├── NotAudio                 the media body is not audio (e.g. Twilio's XML/JSON error document)
    │   └── MediaTooLarge            the media exceeds CALLVAULT_MAX_MEDIA_MB (not worth retrying)
    └── AuditChainBroken             `audit verify` found an edited or removed entry

Pipeline control flow (``RetryLater``, ``Permanent``) lives in ``callvault.pipeline.outcomes``: an outcome
of a job is not an error.
"""

from __future__ import annotations


class CallvaultError(Exception):
    """Root of every error callvault raises on purpose."""

    http_status: int = 500
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CallvaultError):
    """A setting is missing, malformed or contradicts another one."""

    exit_code = 78  # EX_CONFIG


class InvalidInput(CallvaultError):
    http_status = 400
    exit_code = 2


class InvalidSid(InvalidInput):
    """A value does not match the exact pattern of the Twilio SID it claims to be."""


class PayloadTooLarge(InvalidInput):
    http_status = 413


class SignatureInvalid(CallvaultError):
    http_status = 403
    exit_code = 2


class Unauthenticated(CallvaultError):
    http_status = 401
    exit_code = 2


class Forbidden(CallvaultError):
    http_status = 403
    exit_code = 2


class NotFound(CallvaultError):
    http_status = 404
    exit_code = 4


class Conflict(CallvaultError):
    http_status = 409
    exit_code = 5


class TooManyRequests(CallvaultError):
    http_status = 429
    exit_code = 6

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(CallvaultError):
    http_status = 503
    exit_code = 69  # EX_UNAVAILABLE


class StorageError(CallvaultError):
    http_status = 503
    exit_code = 74  # EX_IOERR


class ObjectMissing(StorageError):
    http_status = 404
    exit_code = 4


class TwilioError(CallvaultError):
    http_status = 502
    exit_code = 69

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuditChainBroken(CallvaultError):
    exit_code = 3

    def __init__(self, message: str, *, entry_id: int) -> None:
        super().__init__(message)
        self.entry_id = entry_id


class TwilioRateLimited(TwilioError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class MediaNotReady(TwilioError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class NotAudio(TwilioError):
    pass


class MediaTooLarge(TwilioError):
    pass
