"""The production media store: an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2...).

One boto3 client per process (clients are thread-safe); its calls run in worker threads.
Every call is bounded: ``ATENDE_MEDIA_S3_CONNECT_TIMEOUT_SECONDS`` to connect,
``ATENDE_MEDIA_S3_READ_TIMEOUT_SECONDS`` for each wait on the server, and at most
``ATENDE_MEDIA_S3_MAX_ATTEMPTS`` attempts in all (botocore's "standard" retries: throttling,
5xx and lost connections, with backoff). Credentials come from ``ATENDE_MEDIA_S3_ACCESS_KEY_ID``
and ``..._SECRET_ACCESS_KEY`` when set, else from the AWS default chain (the ECS task
role, an instance profile, ``AWS_*`` variables).

An object is visible only once whole (a ``PutObject`` is atomic), so a reader never sees a
partial file. Encryption at rest is the bucket's (deploy/aws/atende.yaml sets it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from atende.config import Settings
from atende.media.store import CHUNK_BYTES, Blob, MediaMissing, MediaUnavailable, Spooled, checked_key

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def client_config(settings: Settings) -> Config:
    """Timeouts and retries of every call to the bucket."""
    return Config(
        connect_timeout=settings.media_s3_connect_timeout_seconds,
        read_timeout=settings.media_s3_read_timeout_seconds,
        retries={"total_max_attempts": settings.media_s3_max_attempts, "mode": "standard"},
        s3={"addressing_style": settings.media_s3_addressing_style},
        user_agent_extra="atende",
    )


class S3Bucket:
    """Media objects under ``prefix`` in one bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", endpoint: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Bucket:
        if not settings.media_s3_bucket:
            raise ValueError("ATENDE_MEDIA_BACKEND=s3 needs ATENDE_MEDIA_S3_BUCKET")
        secret = settings.media_s3_secret_access_key
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.media_s3_endpoint_url,
            region_name=settings.media_s3_region,
            aws_access_key_id=settings.media_s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=client_config(settings),
        )
        return cls(client, settings.media_s3_bucket, settings.media_s3_prefix, settings.media_s3_endpoint_url)

    @property
    def description(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"S3 bucket {self.bucket}{where}" + (f", prefix {self.prefix}" if self.prefix else "")

    def object_key(self, key: str) -> str:
        return self.prefix + checked_key(key)

    async def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self.client, method), Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in MISSING_CODES:
                raise MediaMissing(f"{what}: no such object in {self.bucket}") from exc
            raise MediaUnavailable(
                f"{what}: {self.description} answered {error.get('Code', '?')} "
                f"({error.get('Message') or 'no message'})"
            ) from exc
        except BotoCoreError as exc:  # unreachable, timed out, no credentials
            raise MediaUnavailable(f"{what}: {self.description} failed: {exc}") from exc

    async def put(self, key: str, spooled: Spooled, *, content_type: str) -> None:
        spooled.file.seek(0)
        await self._call(
            "storing a file",
            "put_object",
            Key=self.object_key(key),
            Body=spooled.file,
            ContentLength=spooled.size,
            ContentType=content_type,
        )

    async def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Blob:
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        answer = await self._call("reading a file", "get_object", Key=self.object_key(key), **extra)
        return Blob(int(answer["ContentLength"]), self._read(answer["Body"]))

    async def _read(self, body: Any) -> AsyncIterator[bytes]:
        try:
            while piece := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield piece
        except BotoCoreError as exc:
            raise MediaUnavailable(f"reading a file: {self.description} failed: {exc}") from exc
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call("deleting a file", "delete_object", Key=self.object_key(key))

    async def check(self) -> str:
        try:
            await self._call("checking the bucket", "head_bucket")
        except MediaMissing as exc:  # HEAD answers a bare 404 for a bucket that is not there
            raise MediaUnavailable(f"checking the bucket: {self.description} does not exist (404)") from exc
        return f"{self.description}, reachable"
