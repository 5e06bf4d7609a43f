"""An S3-compatible server on 127.0.0.1 (moto's ``moto_server``, a subprocess on a free
port) and the two media stores the tests run against: a bucket on it, and a local folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from atende.config import Settings
from atende.media.local import LocalDirectory
from atende.media.s3 import S3Bucket
from atende.media.store import MediaStore
from tests.conftest import free_port

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"  # moto accepts any pair


def moto_server_command() -> str:
    found = Path(sys.executable).with_name("moto_server")
    return str(found) if found.exists() else (shutil.which("moto_server") or "moto_server")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``moto_server`` on a free loopback port, for the whole session."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [moto_server_command(), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{endpoint}/moto-api/", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, f"moto_server exited with {process.returncode}"
            assert time.monotonic() < deadline, "moto_server did not start within 30 s"
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def s3_settings(endpoint: str, bucket: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "media_backend": "s3",
        "media_s3_bucket": bucket,
        "media_s3_endpoint_url": endpoint,
        "media_s3_region": "us-east-1",
        "media_s3_access_key_id": ACCESS_KEY,
        "media_s3_secret_access_key": SECRET_KEY,
        "media_s3_prefix": "media/",
        "media_s3_connect_timeout_seconds": 2,
        "media_s3_read_timeout_seconds": 5,
        "media_s3_max_attempts": 2,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def raw_client(endpoint: str) -> object:
    """A plain boto3 client, to look at the bucket behind the store's back."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket."""
    name = f"atende-{uuid.uuid4().hex[:12]}"
    raw_client(s3_endpoint).create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


def stored_keys(store: MediaStore, s3_endpoint: str | None = None) -> list[str]:
    """Every file a store holds, as its keys (temporary files included, for a local folder)."""
    if isinstance(store, LocalDirectory):
        if not store.root.exists():
            return []
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    assert isinstance(store, S3Bucket) and s3_endpoint is not None
    listed = raw_client(s3_endpoint).list_objects_v2(Bucket=store.bucket)  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture(params=["local", "s3"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of each kind of store: a fresh folder, or a fresh bucket on moto_server."""
    if request.param == "local":
        return Settings(media_dir=tmp_path / "media")  # type: ignore[call-arg]
    endpoint = request.getfixturevalue("s3_endpoint")
    return s3_settings(endpoint, request.getfixturevalue("bucket"))
