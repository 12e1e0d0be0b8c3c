"""The S3 Object Lock witness against the suite's real S3-protocol server (moto; issue 18)."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from lakehouse_common.audit.witness import S3Witness, WitnessError
from lakehouse_common.ops.stack import free_port
from tests.support.stack import S3Server


def witness(endpoint: str, bucket: str) -> S3Witness:
    return S3Witness.connect(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
        bucket=bucket,
        prefix="cp/",
        retention_days=1,
    )


@pytest.fixture
def locked(s3_env: S3Server) -> S3Witness:
    w = witness(s3_env.endpoint, f"witness-{secrets.token_hex(4)}")
    w.create_bucket()
    return w


def test_published_checkpoints_are_locked_and_the_newest_is_the_head(locked: S3Witness) -> None:
    assert locked.head() is None
    locked.publish(1, b'{"seq":1}')
    locked.publish(2, b'{"seq":2}')
    locked.publish(2, b'{"seq":2}')  # idempotent
    head = locked.head()
    assert head is not None and (head.seq, head.line) == (2, b'{"seq":2}')
    info = locked.client.head_object(Bucket=locked.bucket, Key="cp/000000000002.json")
    assert info["ObjectLockMode"] == "COMPLIANCE" and "ObjectLockRetainUntilDate" in info


def test_a_locked_version_cannot_be_deleted_or_replaced(locked: S3Witness) -> None:
    locked.publish(1, b'{"seq":1}')
    key = "cp/000000000001.json"
    version = locked.client.head_object(Bucket=locked.bucket, Key=key)["VersionId"]
    with pytest.raises(ClientError):
        locked.client.delete_object(Bucket=locked.bucket, Key=key, VersionId=version)
    # A later version on top (the most a writer can do) does not replace what was published.
    locked.client.put_object(Bucket=locked.bucket, Key=key, Body=b'{"forged":1}\n')
    head = locked.head()
    assert head is not None and head.line == b'{"seq":1}'
    with pytest.raises(WitnessError, match="never replaced"):
        locked.publish(1, b'{"seq":1,"x":1}')


def test_server_down_is_a_witness_error(s3_env: S3Server) -> None:
    port = free_port()  # nothing listens here
    down = witness(f"http://127.0.0.1:{port}", "nope")
    with pytest.raises(WitnessError, match="cannot"):
        down.publish(1, b"{}")
    # ... and the same witness publishes once a server answers there.
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                down.create_bucket()
                break
            except WitnessError:
                import time

                time.sleep(0.1)
        down.publish(1, b"{}")
        head = down.head()
        assert head is not None and head.seq == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
