"""Run ministack with the one condition key callvault's bucket policy needs and ministack 1.5.33 lacks.

Started by ``tests/s3server/server.py`` (for the test fixtures and the benchmarks) with the ministack
virtualenv's own interpreter (ministack pins a botocore that clashes with callvault's boto3, so it cannot be
imported from callvault's environment).

Why: real S3 puts ``s3:authType`` (``REST-HEADER`` | ``REST-QUERY-STRING`` | ``POST``) into the condition
context of every request; ministack's ``ministack.core.iam_actions.s3_service_context`` does not, so a
"Deny s3:GetObject unless s3:authType = REST-QUERY-STRING" statement would deny valid presigned URLs as well
(an absent key satisfies a negated operator). This launcher wraps that function before the server starts.
Every caller imports it from the module at call time, so replacing the module attribute reaches them all.
If an upgrade renames or moves it, the launcher exits non-zero with a message instead of serving silently
without the key; ``tests/storage/test_hardening.py`` holds the pair of tests that notices a quieter break.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

PATCHED_MODULE = "ministack.core.iam_actions"
PATCHED_FUNCTION = "s3_service_context"


def auth_type(query_params: dict[str, Any] | None, headers: dict[str, Any] | None) -> str | None:
    """The ``s3:authType`` of a request, as AWS documents it: a SigV4 query signature is
    ``REST-QUERY-STRING``, an ``Authorization`` header ``REST-HEADER``; anything else has none."""
    names = {name.lower() for name in (query_params or {})}
    if "x-amz-signature" in names:
        return "REST-QUERY-STRING"
    if any(name.lower() == "authorization" for name in (headers or {})):
        return "REST-HEADER"
    return None


def _with_auth_type(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def s3_service_context(
        iam_action: str,
        query_params: dict[str, Any] | None,
        path: str = "",
        headers: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        context = dict(original(iam_action, query_params, path, headers))
        kind = auth_type(query_params, headers)
        if kind is not None:
            context.setdefault("s3:authType", kind)
        return context

    s3_service_context.__wrapped__ = original  # type: ignore[attr-defined]
    return s3_service_context


def patch() -> None:
    import importlib

    module = importlib.import_module(PATCHED_MODULE)
    original = getattr(module, PATCHED_FUNCTION, None)
    if not callable(original):
        raise SystemExit(
            f"callvault S3 test launcher: {PATCHED_MODULE}.{PATCHED_FUNCTION} not found; "
            "this ministack version needs a new s3:authType patch (see tests/s3server/launch.py)"
        )
    setattr(module, PATCHED_FUNCTION, _with_auth_type(original))


def main() -> None:
    patch()
    from ministack.app import main as ministack_main

    sys.argv[0] = "ministack"
    ministack_main()


if __name__ == "__main__":
    main()
