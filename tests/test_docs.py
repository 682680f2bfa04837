"""Docs are tested too: every setting is documented."""

from pathlib import Path

from callvault.settings import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_configuration_md() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [env_name(name) for name in Settings.model_fields if f"`{env_name(name)}`" not in text]
    assert missing == []


def test_readme_quick_start_is_the_two_make_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make serve" in text
    assert "make test" in text
