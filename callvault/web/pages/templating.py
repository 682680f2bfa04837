"""Jinja2 for the server-rendered pages: one environment, human-friendly filters, one ``render`` helper.

Autoescaping is on for every template and undefined variables raise, so a typo fails a test instead of
rendering an empty string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from callvault import __version__
from callvault.context import Context
from callvault.web.sessions import Caller

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def duration(seconds: int | None) -> str:
    """``75`` → ``1:15``; an hour or more → ``1:02:03``."""
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def filesize(size: int | None) -> str:
    """Bytes for people: ``512 B``, ``12.3 KB``, ``4.5 MB``, ``1.20 GB`` (binary multiples)."""
    if size is None:
        return "—"
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.2f} {unit}" if unit in ("GB", "TB") else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def when(moment: datetime | None) -> str:
    """``3 Mar 2025, 14:05 UTC``. Times are shown in UTC, labelled, because the server does not know the
    reader's zone and the audit trail is in UTC too."""
    if moment is None:
        return "—"
    at = moment.astimezone(UTC)
    return f"{at.day} {at:%b %Y, %H:%M} UTC"


def stamp(moment: datetime | None) -> str:
    """``3 Mar 2025 14:05:09``: the audit trail's precise, compact form (UTC, labelled in the header)."""
    if moment is None:
        return "—"
    at = moment.astimezone(UTC)
    return f"{at.day} {at:%b %Y %H:%M:%S}"


def plain(value: object) -> str:
    """A JSON value for people: lists joined, ``None`` as a dash, booleans as yes/no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(plain(item) for item in value) or "—"
    return str(value)


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, ``2 days ago`` (for titles and secondary text)."""
    if moment is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return "1 day ago" if days == 1 else f"{days} days ago"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration, filesize=filesize, when=when, stamp=stamp, plain=plain, iso=iso, ago=ago
    )
    env.globals["version"] = __version__
    return env


ENV = _environment()


def render(
    request: Request,
    name: str,
    *,
    ctx: Context | None,
    caller: Caller | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``name`` with the layout's common context (who is logged in, their CSRF token, demo mode)."""
    values: dict[str, Any] = {
        "request": request,
        "path": request.url.path,
        "principal": caller.principal if caller else None,
        "csrf": caller.csrf(ctx.secret_key) if caller and ctx else "",
        "demo": bool(ctx and ctx.settings.demo),
    }
    values.update(context)
    html = ENV.get_template(name).render(values)
    return HTMLResponse(html, status_code=status_code, headers=headers)
