"""Settings: a bad or contradictory value stops start-up with one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from callvault.errors import ConfigError
from callvault.settings import load_settings

AC = "AC" + "0" * 32


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"storage_url": "ftp://host/x"}, "CALLVAULT_STORAGE_URL"),
        ({"storage_url": "file://relative/dir"}, "CALLVAULT_STORAGE_URL"),
        ({"database_url": "mysql://x"}, "CALLVAULT_DATABASE_URL"),
        ({"twilio_account_sid": "AC123"}, "CALLVAULT_TWILIO_ACCOUNT_SID"),
        ({"twilio_account_sid": AC}, "CALLVAULT_TWILIO_AUTH_TOKEN"),
        ({"twilio_account_sid": AC, "twilio_auth_token": "t"}, "CALLVAULT_PUBLIC_URL"),
        ({"twilio_api_key_sid": "SK" + "1" * 32}, "CALLVAULT_TWILIO_API_KEY_SECRET"),
        ({"s3_kms_key_id": "arn:aws:kms:x"}, "CALLVAULT_S3_KMS_KEY_ID"),
        ({"s3_sse": "rot13"}, "CALLVAULT_S3_SSE"),
        ({"media_format": "ogg"}, "CALLVAULT_MEDIA_FORMAT"),
        ({"playback_ttl_seconds": 0}, "CALLVAULT_PLAYBACK_TTL_SECONDS"),
        ({"public_url": "vault.example.com"}, "CALLVAULT_PUBLIC_URL"),
        ({"twilio_api_base_url": "https://api.twilio.com/?x=1"}, "CALLVAULT_TWILIO_API_BASE_URL"),
        ({"retry_base_seconds": 10, "retry_max_seconds": 5}, "CALLVAULT_RETRY_MAX_SECONDS"),
        ({"failpoints": "after_lunch"}, "CALLVAULT_FAILPOINTS"),
        ({"log_level": "LOUD"}, "CALLVAULT_LOG_LEVEL"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(data_dir=tmp_path, **overrides)
    message = raised.value.message
    assert message.startswith(named + ":"), message
    assert "\n" not in message


def test_bad_environment_values_are_reported_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLVAULT_WORKER_CONCURRENCY", "lots")
    with pytest.raises(ConfigError, match="^CALLVAULT_WORKER_CONCURRENCY:"):
        load_settings(data_dir=tmp_path)


def test_embedded_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", port=8123)
    assert settings.demo
    assert settings.database_url == f"sqlite:///{tmp_path / 'd' / 'callvault.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'd' / 'recordings'}"
    assert settings.public_url == "http://127.0.0.1:8123"


def test_the_generated_secret_key_is_private_and_stable(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = settings.load_secret_key()
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_settings(data_dir=tmp_path).load_secret_key() == first
