"""Settings: one pydantic-settings object, environment prefix ``CALLVAULT_``.

Built once in an entry point (``callvault.cli``) with :func:`load_settings` and passed down; nothing in the
package builds it at import time. Every field is documented in ``docs/configuration.md`` (a test checks).
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callvault import sids
from callvault.errors import ConfigError

ENV_PREFIX = "CALLVAULT_"


class MediaFormat(StrEnum):
    WAV = "wav"
    MP3 = "mp3"


class S3Sse(StrEnum):
    AES256 = "AES256"
    KMS = "aws:kms"


class PlaybackMode(StrEnum):
    REDIRECT = "redirect"
    PROXY = "proxy"


class Settings(BaseSettings):
    """callvault's configuration. Field names map to ``CALLVAULT_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # -- embedded state -------------------------------------------------------------------------
    data_dir: Path = Field(default=Path("callvault-data"))
    database_url: str = ""
    # Twilio waits 15 s for a webhook: a write that waits longer for SQLite's lock answers nothing useful.
    sqlite_busy_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    storage_url: str = ""
    secret_key: SecretStr | None = None

    # -- storage (S3) ---------------------------------------------------------------------------
    s3_endpoint_url: str | None = None
    s3_sse: S3Sse = S3Sse.AES256
    s3_kms_key_id: str | None = None
    s3_part_size_mb: int = Field(default=8, ge=5, le=512)

    # -- Twilio ---------------------------------------------------------------------------------
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_key_sid: str | None = None
    twilio_api_key_secret: SecretStr | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    public_url: str = ""
    delete_from_twilio: bool = True
    media_format: MediaFormat = MediaFormat.WAV
    max_media_mb: int = Field(default=4096, ge=1)
    webhook_max_body_bytes: int = Field(default=65536, ge=1024)

    # -- pipeline -------------------------------------------------------------------------------
    max_attempts: int = Field(default=12, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    lease_seconds: float = Field(default=120.0, ge=1)
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    reconcile_interval_minutes: int = Field(default=60, ge=0)
    reconcile_lookback_days: int = Field(default=2, ge=1, le=60)
    failpoints: str = ""  # testing only: see callvault.pipeline.failpoints

    # -- playback and access --------------------------------------------------------------------
    playback_ttl_seconds: int = Field(default=30, ge=1, le=3600)
    playback_mode: PlaybackMode = PlaybackMode.REDIRECT
    session_ttl_hours: float = Field(default=12.0, gt=0)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)

    # -- serving ----------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "INFO"
    demo_calls: int = Field(default=5, ge=0, le=1000)

    # -- validation -------------------------------------------------------------------------------
    @field_validator("twilio_account_sid")
    @classmethod
    def _account_sid(cls, value: str | None) -> str | None:
        if value is not None and not sids.is_sid(value, "AC"):
            raise ValueError("must be 'AC' followed by 32 lowercase hex digits")
        return value

    @field_validator("twilio_api_key_sid")
    @classmethod
    def _api_key_sid(cls, value: str | None) -> str | None:
        if value is not None and not sids.is_sid(value, "SK"):
            raise ValueError("must be 'SK' followed by 32 lowercase hex digits")
        return value

    @field_validator("twilio_api_base_url", "public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("failpoints")
    @classmethod
    def _failpoints(cls, value: str) -> str:
        from callvault.pipeline.failpoints import Failpoints

        Failpoints(value)  # raises ValueError naming an unknown point
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme == "file":
            if parts.netloc or not parts.path.startswith("/"):
                raise ValueError("a file URL must be file:///absolute/directory")
        elif parts.scheme == "s3":
            if not parts.netloc:
                raise ValueError("an S3 URL must be s3://bucket[/prefix]")
        else:
            raise ValueError("must be file:///absolute/dir or s3://bucket[/prefix]")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "sqlite+pysqlite://", "postgresql+psycopg://")):
            raise ValueError("must be sqlite:///path or postgresql+psycopg://…")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        data_dir = self.data_dir.expanduser().resolve()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'callvault.db'}")
        if not self.storage_url:
            object.__setattr__(self, "storage_url", f"file://{data_dir / 'recordings'}")
        if self.s3_kms_key_id and self.s3_sse is not S3Sse.KMS:
            raise _contradiction("s3_kms_key_id", "is set but CALLVAULT_S3_SSE is not aws:kms")
        if (self.twilio_api_key_sid is None) != (self.twilio_api_key_secret is None):
            raise _contradiction("twilio_api_key_secret", "API key SID and secret must be set together")
        if (self.twilio_account_sid is None) != (self.twilio_auth_token is None):
            raise _contradiction("twilio_auth_token", "account SID and auth token must be set together")
        if self.twilio_api_key_sid and not self.twilio_account_sid:
            raise _contradiction("twilio_account_sid", "is required when an API key is set")
        if not self.public_url:
            if not self.demo:
                raise _contradiction("public_url", "is required when Twilio credentials are set")
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
            object.__setattr__(self, "public_url", f"http://{host}:{self.port}")
        if self.retry_max_seconds < self.retry_base_seconds:
            raise _contradiction("retry_max_seconds", "must not be smaller than CALLVAULT_RETRY_BASE_SECONDS")
        return self

    # -- derived --------------------------------------------------------------------------------
    @property
    def demo(self) -> bool:
        """No Twilio credentials: run against the built-in simulator, clearly labelled."""
        return self.twilio_account_sid is None

    @property
    def storage_scheme(self) -> str:
        return urlsplit(self.storage_url).scheme

    def load_secret_key(self) -> bytes:
        """The key for callvault's own HMACs (signed URLs, sessions, CSRF).

        Taken from CALLVAULT_SECRET_KEY, else generated once into DATA_DIR/secret_key (mode 0600), so every
        process sharing the data directory agrees. Multi-host deployments must set it explicitly.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret_key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48).encode()
        try:
            with open(path, "xb", opener=_private_opener) as handle:
                handle.write(key)
        except FileExistsError:  # another process won the race: use its key
            return path.read_bytes().strip()
        return key


def _private_opener(path: str, flags: int) -> int:
    import os

    return os.open(path, flags, 0o600)


class _ContradictionError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _contradiction(field: str, message: str) -> _ContradictionError:
    return _ContradictionError(field, message)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment (and ``overrides``); raise :class:`ConfigError` with one line
    naming the offending setting when a value is bad or contradicts another."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx_error = (error.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _ContradictionError):
            raise ConfigError(f"{env_name(ctx_error.field)}: {ctx_error}") from None
        loc = error.get("loc") or ("?",)
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        raise ConfigError(f"{env_name(str(loc[0]))}: {message}") from None
