"""Fixtures of the fault-injection suite (helpers in ``tests/faults/rig.py`` and ``deployment.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callvault.db.database import Database
from callvault.twilio.simulator.server import SimulatorServer
from tests.custody import CustodyWitness
from tests.factories import process_env
from tests.faults.deployment import S3Deployment
from tests.faults.rig import FaultRig, make_rig, read_object, s3_store_via, settings_for, vault_key
from tests.plugins.faults import S3FaultProxy
from tests.plugins.processes import CallvaultProcess
from tests.plugins.s3 import S3Server


@pytest.fixture
def file_rig(tmp_path: Path, database_url: str, simulator: SimulatorServer) -> Iterator[FaultRig]:
    """The pipeline on the file store under ``tmp_path/data/recordings``."""
    rig = make_rig(settings=settings_for(tmp_path, database_url, simulator), simulator=simulator)
    yield rig
    rig.ctx.close()


@pytest.fixture
def s3_rig(
    tmp_path: Path,
    database_url: str,
    simulator: SimulatorServer,
    s3_server: S3Server,
    s3_bucket: str,
    s3_fault_proxy: S3FaultProxy,
) -> Iterator[FaultRig]:
    """The pipeline on S3, reaching the bucket through ``s3_fault_proxy``."""
    settings = settings_for(tmp_path, database_url, simulator, storage_url=f"s3://{s3_bucket}/vault")
    rig = make_rig(
        settings=settings,
        simulator=simulator,
        store=s3_store_via(s3_server, s3_bucket, s3_fault_proxy.endpoint_url),
        view=s3_store_via(s3_server, s3_bucket),
    )
    yield rig
    rig.ctx.close()


@pytest.fixture(params=["file", "s3"])
def any_rig(request: pytest.FixtureRequest, database_url: str) -> FaultRig:
    """``file_rig`` and ``s3_rig`` in turn (``database_url`` is named so both databases apply)."""
    rig: FaultRig = request.getfixturevalue(f"{request.param}_rig")
    return rig


@pytest.fixture
def s3_deployment(
    tmp_path: Path,
    database_url: str,
    simulator: SimulatorServer,
    s3_server: S3Server,
    s3_bucket: str,
    s3_fault_proxy: S3FaultProxy,
    callvault_processes: list[CallvaultProcess],
) -> Iterator[S3Deployment]:
    env = {
        **process_env(
            tmp_path=tmp_path,
            database_url=database_url,
            storage_url=f"s3://{s3_bucket}/vault",
            simulator=simulator,
        ),
        "CALLVAULT_S3_ENDPOINT_URL": s3_fault_proxy.endpoint_url,
        "CALLVAULT_S3_PART_SIZE_MB": "5",
        "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "AWS_DEFAULT_REGION": s3_server.region,
    }
    view = s3_store_via(s3_server, s3_bucket)
    witness = CustodyWitness(simulator, lambda sid: read_object(view, vault_key(simulator, sid))).install()
    db = Database(database_url)
    yield S3Deployment(
        tmp_path=tmp_path,
        env=env,
        db=db,
        simulator=simulator,
        witness=witness,
        view=view,
        proxy=s3_fault_proxy,
        s3_server=s3_server,
        bucket=s3_bucket,
        processes=callvault_processes,
    )
    db.dispose()
