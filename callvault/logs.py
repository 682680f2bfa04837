"""Logging set-up, with redaction: no secrets or tokens in logs, whoever formats the line."""

from __future__ import annotations

import logging
import re

# Signed media URLs carry their token in the path; presigned S3 URLs in the query; session cookies and
# bearer tokens in headers (never logged by us, redacted anyway should a library log them).
_PATTERNS = [
    (re.compile(r"(/media/)[A-Za-z0-9_\-.~%]+"), r"\1[redacted]"),
    (
        re.compile(r"((?:X-Amz-(?:Signature|Credential|Security-Token))=)[^&\s\"']+", re.IGNORECASE),
        r"\1[redacted]",
    ),
    (re.compile(r"(Bearer\s+)\S+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"\bcvt_[A-Za-z0-9_\-]+"), "cvt_[redacted]"),
    (re.compile(r"(cv_session=)[^;\s]+"), r"\1[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str) -> None:
    """Plain, one-line logs on stderr; every handler redacts."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # botocore and httpx log request URLs at DEBUG; keep them quiet unless asked.
    for name in ("botocore", "boto3", "urllib3", "httpx", "httpcore", "twilio"):
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING))
