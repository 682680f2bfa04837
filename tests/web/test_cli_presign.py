"""``callvault presign SID [--ttl S]`` as a real subprocess: prints a working URL, audited as "cli"."""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from callvault.db.database import Database
from callvault.storage.local import FileStore
from tests.plugins.cli import Cli
from tests.plugins.playback import SECRET, Vault, make_context, make_settings, new_sid, wav_bytes

BODY = wav_bytes(1.0)


@pytest.fixture
def presign_vault(cli: Cli, fast_passwords: None) -> Iterator[Vault]:
    """The CLI's database and file store, seen from a Vault in this process (same secret key)."""
    data_dir = Path(cli.env["CALLVAULT_DATA_DIR"])
    cli.env |= {"CALLVAULT_SECRET_KEY": SECRET, "CALLVAULT_PUBLIC_URL": "https://vault.example.com"}
    settings = make_settings(cli.database_url, data_dir, storage_url=f"file://{data_dir / 'recordings'}")
    database = Database(cli.database_url)
    vault = Vault(make_context(database, FileStore(data_dir / "recordings"), settings))
    yield vault
    vault.close()
    database.dispose()


def test_presign_prints_a_url_on_the_public_url_that_serves_the_recording(
    cli: Cli, presign_vault: Vault
) -> None:
    sid = presign_vault.seed(body=BODY)
    result = cli.ok("presign", sid, "--ttl", "120")
    url = result.stdout.strip()
    assert url.startswith("https://vault.example.com/media/")
    assert "\n" not in url
    assert presign_vault.client().get(urlsplit(url).path).content == BODY
    [entry] = presign_vault.audit("playback.issue")
    assert (entry.actor, entry.recording_sid) == ("cli", sid)
    assert (entry.detail["via"], entry.detail["ttl"]) == ("cli", 120)


def test_presign_refuses_unknown_and_malformed_sids_with_one_line(
    cli: Cli, presign_vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process (typer's runner, same command function): a process start costs seconds on a busy machine,
    # and the happy path above already runs the real executable.
    from typer.testing import CliRunner

    from callvault.cli import app

    for name, value in cli.env.items():
        if name.startswith("CALLVAULT_"):
            monkeypatch.setenv(name, value)
    runner = CliRunner()
    unknown = runner.invoke(app, ["presign", new_sid("RE")])
    assert unknown.exit_code == 4
    assert unknown.stderr.startswith("error: no recording")
    assert unknown.stdout == ""
    malformed = runner.invoke(app, ["presign", "RE-not-a-sid"])
    assert malformed.exit_code == 2
    assert malformed.stderr.startswith("error: RecordingSid must be")
    assert presign_vault.audit("playback.issue") == []
