"""open_store: the storage URL decides the backend; the S3 client comes from boto3's standard chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from callvault.errors import ConfigError
from callvault.settings import S3Sse, Settings, load_settings
from callvault.storage.factory import open_store, s3_client
from callvault.storage.local import FileStore
from callvault.storage.s3 import S3Store
from tests.plugins.s3 import S3Server

KEY = "AC00000000000000000000000000000000/2024/05/06/RE00000000000000000000000000000000.wav"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment with no AWS configuration at all (no region, no profile, no config files)."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe 169.254.169.254
    return monkeypatch


def test_a_file_url_opens_a_file_store_at_that_directory(tmp_path: Path) -> None:
    store = open_store(load_settings(data_dir=tmp_path, storage_url=f"file://{tmp_path}/vault%20dir"))
    assert isinstance(store, FileStore)
    assert store.root == tmp_path / "vault dir"


def test_the_default_storage_is_a_file_store_in_the_data_directory(tmp_path: Path) -> None:
    store = open_store(load_settings(data_dir=tmp_path))
    assert isinstance(store, FileStore)
    assert store.root == tmp_path.resolve() / "recordings"


def test_an_unknown_scheme_is_a_config_error(tmp_path: Path) -> None:
    # Settings validation refuses it first; the factory must still not guess if handed one anyway.
    settings = load_settings(data_dir=tmp_path).model_copy(update={"storage_url": "ftp://host/dir"})
    with pytest.raises(ConfigError, match="CALLVAULT_STORAGE_URL"):
        open_store(settings)


def test_an_s3_url_opens_an_s3_store_with_bucket_prefix_and_settings(
    aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        storage_url="s3://my-bucket/calls/recordings/",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_sse="aws:kms",
        s3_kms_key_id="alias/callvault",
        s3_part_size_mb=16,
    )
    store = open_store(settings)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.description) == (
        "my-bucket",
        "calls/recordings",
        "s3://my-bucket/calls/recordings",
    )
    assert (store.sse, store.kms_key_id, store.part_size) == (S3Sse.KMS, "alias/callvault", 16 * 1024 * 1024)


def test_the_client_defaults_to_us_east_1_sigv4_and_path_style_for_an_endpoint(
    aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = s3_client(load_settings(data_dir=tmp_path, s3_endpoint_url="http://127.0.0.1:9"))
    assert client.meta.region_name == "us-east-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.config.signature_version == "s3v4"
    assert client.meta.config.s3 == {"addressing_style": "path"}
    assert client.meta.config.retries["mode"] == "standard"


def test_the_client_takes_the_region_from_the_environment(
    aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws_env.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    client = s3_client(load_settings(data_dir=tmp_path))
    assert client.meta.region_name == "eu-central-1"
    assert not (client.meta.config.s3 or {}).get("addressing_style")  # AWS itself: boto3 chooses


@pytest.mark.s3
def test_a_store_from_settings_works_against_the_s3_server_with_credentials_from_the_environment(
    aws_env: pytest.MonkeyPatch, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    settings: Settings = load_settings(
        data_dir=tmp_path, storage_url=f"s3://{s3_bucket}/vault", s3_endpoint_url=s3_server.endpoint_url
    )
    store = open_store(settings)
    store.check()
    result = store.put(KEY, [b"from settings"], content_type="audio/wav", max_bytes=100)
    assert store.stat(KEY) is not None and store.stat(KEY).checksum == result.checksum  # type: ignore[union-attr]
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"vault/{KEY}")
    assert head["ServerSideEncryption"] == "AES256"
