"""The media store against a real folder and a real S3-compatible server on 127.0.0.1:
files go in and come out whole, a file over the limit leaves nothing behind, a company never
reaches another's file, and every bucket call is bounded in time."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from atende.config import Settings
from atende.errors import NotFound
from atende.media import service
from atende.media.local import LocalDirectory
from atende.media.models import Media
from atende.media.s3 import S3Bucket
from atende.media.store import MediaStore, MediaTooLarge, MediaUnavailable, build_store, key_for, spool
from atende.observability import health
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.fixtures.servers import silent_server
from tests.media.conftest import raw_client, s3_settings, stored_keys

PHOTO = bytes(range(256)) * 1000  # 256 kB: more than one piece, in memory
BIG = b"\x89PNG" + b"x" * (2 * 1024 * 1024)  # past the in-memory spool: a temporary file


async def new_company(runtime: Runtime) -> uuid.UUID:
    slug = f"media-{uuid.uuid4().hex[:10]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug)
    return company.id


async def read_all(store: MediaStore, media: Media) -> bytes:
    blob = await service.read(store, media)
    data = b"".join([piece async for piece in blob.chunks])
    assert blob.size == len(data)
    return data


def endpoint_of(store: MediaStore) -> str | None:
    return store.endpoint if isinstance(store, S3Bucket) else None


@pytest.mark.parametrize("data", [PHOTO, BIG], ids=["256kB", "2MB"])
async def test_a_file_goes_in_and_comes_out_whole_then_is_deleted(
    runtime: Runtime, store_settings: Settings, data: bytes
) -> None:
    store = build_store(store_settings)
    company_id = await new_company(runtime)
    async with runtime.db.transaction(company_id) as session:
        media = await service.put(
            session, store, data, content_type="image/png", filename="foto.png", max_bytes=len(BIG)
        )
    assert (media.size_bytes, media.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert media.storage_key == key_for(company_id, media.id)
    async with runtime.db.transaction(company_id) as session:
        found = await service.get(session, media.id)
    assert (found.content_type, found.filename) == ("image/png", "foto.png")
    assert await read_all(store, found) == data
    part = await store.open(found.storage_key, (70_000, 200_000))  # across pieces
    assert part.size == 130_001
    assert b"".join([piece async for piece in part.chunks]) == data[70_000:200_001]
    prefix = "media/" if isinstance(store, S3Bucket) else ""
    assert stored_keys(store, endpoint_of(store)) == [prefix + media.storage_key]  # no temporary file left

    async with runtime.db.transaction(company_id) as session:
        await service.delete(session, store, media.id)
    assert stored_keys(store, endpoint_of(store)) == []
    async with runtime.db.transaction(company_id) as session:
        with pytest.raises(NotFound):
            await service.get(session, media.id)


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("as_stream", [False, True], ids=["bytes", "stream"])
async def test_a_file_over_the_limit_is_refused_whole_and_nothing_is_stored(
    runtime: Runtime, store_settings: Settings, as_stream: bool
) -> None:
    store = build_store(store_settings)
    company_id = await new_company(runtime)
    data = b"v" * 1001
    async with runtime.db.transaction(company_id) as session:
        with pytest.raises(MediaTooLarge) as refused:
            await service.put(
                session,
                store,
                pieces(data, 100) if as_stream else data,
                content_type="video/mp4",
                max_bytes=1000,
            )
    assert refused.value.status_code == 413
    assert "larger than 1000 bytes" in refused.value.message
    assert "nothing was stored" in refused.value.message
    assert stored_keys(store, endpoint_of(store)) == []
    async with runtime.db.transaction(company_id) as session:
        assert await session.scalar(select(func.count()).select_from(Media)) == 0
    # exactly at the limit is accepted
    async with runtime.db.transaction(company_id) as session:
        media = await service.put(session, store, data[:1000], content_type="video/mp4", max_bytes=1000)
    assert await read_all(store, media) == data[:1000]


async def test_a_company_never_reaches_another_companys_file(
    runtime: Runtime, store_settings: Settings
) -> None:
    store = build_store(store_settings)
    a, b = await new_company(runtime), await new_company(runtime)
    async with runtime.db.transaction(b) as session:
        bs = await service.put(session, store, b"B's invoice", content_type="application/pdf", max_bytes=100)
    async with runtime.db.transaction(a) as session:
        with pytest.raises(NotFound):
            await service.get(session, bs.id)
        with pytest.raises(NotFound):
            await service.delete(session, store, bs.id)
        assert (await session.scalars(select(Media))).all() == []
    assert await read_all(store, bs) == b"B's invoice"  # untouched
    assert bs.storage_key.startswith(f"{b}/")


async def test_a_row_that_cannot_be_written_takes_its_file_away_again(
    runtime: Runtime, store_settings: Settings
) -> None:
    store = build_store(store_settings)
    gone = uuid.uuid4()  # a company deleted meanwhile: its row breaks the foreign key
    with pytest.raises(IntegrityError, match="foreign key"):
        async with runtime.db.transaction(gone) as session:
            await service.put(session, store, b"x", content_type="image/png", filename="a.png", max_bytes=10)
    assert stored_keys(store, endpoint_of(store)) == []


@pytest.mark.parametrize(
    ("declared", "kept"),
    [
        ("image/JPEG", "image/jpeg"),
        ("text/html; charset=utf-8", "text/html"),
        ("", "application/octet-stream"),
        (None, "application/octet-stream"),
        ("<script>", "application/octet-stream"),
        ("text/html\r\nX-Injected: 1", "application/octet-stream"),
    ],
)
def test_a_declared_type_is_kept_as_type_and_subtype_or_as_bytes(declared: str | None, kept: str) -> None:
    assert service.media_type(declared) == kept


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("foto.jpg", "foto.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ana\\relatório.pdf", "relatório.pdf"),
        ("a\x00b\r\n.txt", "ab.txt"),
        ("..", None),
        ("", None),
        (None, None),
    ],
)
def test_a_sent_file_name_is_only_ever_a_name(sent: str | None, kept: str | None) -> None:
    assert service.clean_filename(sent) == kept


def test_the_local_folder_refuses_any_key_it_did_not_make(tmp_path: Path) -> None:
    store = LocalDirectory(tmp_path / "media")
    company, media = uuid.uuid4(), uuid.uuid4()
    assert store.path_of(key_for(company, media)) == tmp_path / "media" / str(company) / str(media)
    for key in ("../x", f"{company}/../../etc/passwd", f"/{company}/{media}", f"{company}/{media}/..", "a/b"):
        with pytest.raises(ValueError, match="not a media key"):
            store.path_of(key)
    # a folder planted in the store as a symlink to elsewhere is not followed
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / str(company)).symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        store.path_of(key_for(company, media))


async def test_an_unusable_folder_is_said_by_the_check_and_refuses_files(
    runtime: Runtime, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    company_id = await new_company(runtime)
    for root, said in [
        (blocker, "is not a folder"),
        (
            blocker / "media",
            f"cannot create the media folder {blocker / 'media'}: {blocker} is not a writable",
        ),
    ]:
        store = LocalDirectory(root)
        with pytest.raises(MediaUnavailable, match=said):
            await store.check()
        async with runtime.db.transaction(company_id) as session:
            with pytest.raises(MediaUnavailable, match="cannot write to the media folder"):
                await service.put(session, store, b"x", content_type="image/png", max_bytes=10)
            assert await session.scalar(select(func.count()).select_from(Media)) == 0


async def test_the_check_creates_nothing(tmp_path: Path) -> None:
    store = LocalDirectory(tmp_path / "data" / "media")
    assert await store.check() == f"local folder {tmp_path / 'data' / 'media'}, created at the first file"
    assert list(tmp_path.iterdir()) == []  # the embedded database's folder stays empty until it starts
    (tmp_path / "data" / "media").mkdir(parents=True)
    assert await store.check() == f"local folder {tmp_path / 'data' / 'media'}, writable"


async def test_objects_are_kept_under_the_prefix_with_their_type(s3_endpoint: str, bucket: str) -> None:
    store = build_store(s3_settings(s3_endpoint, bucket, media_s3_prefix="atende/media/"))
    key = key_for(uuid.uuid4(), uuid.uuid4())

    with await spool(b"OggS voice note", 100) as spooled:
        await store.put(key, spooled, content_type="audio/ogg")
    head = raw_client(s3_endpoint).head_object(Bucket=bucket, Key=f"atende/media/{key}")  # type: ignore[attr-defined]
    assert (head["ContentType"], head["ContentLength"]) == ("audio/ogg", 15)
    assert await store.check() == f"S3 bucket {bucket} at {s3_endpoint}, prefix atende/media/, reachable"


def test_every_bucket_call_has_the_configured_timeouts_and_bounded_retries(s3_endpoint: str) -> None:
    store = build_store(
        s3_settings(
            s3_endpoint,
            "any-bucket",
            media_s3_connect_timeout_seconds=1.5,
            media_s3_read_timeout_seconds=7,
            media_s3_max_attempts=4,
        )
    )
    assert isinstance(store, S3Bucket)
    config = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7)
    assert config.retries == {"total_max_attempts": 4, "mode": "standard"}


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts connections and never answers."""
    with silent_server() as port:
        yield f"http://127.0.0.1:{port}"


async def test_a_bucket_that_never_answers_fails_within_the_timeouts(
    runtime: Runtime, silent_endpoint: str
) -> None:
    settings = s3_settings(
        silent_endpoint, "silent-bucket", media_s3_read_timeout_seconds=0.5, media_s3_max_attempts=2
    )
    store = build_store(settings)
    company_id = await new_company(runtime)
    started = time.monotonic()
    async with runtime.db.transaction(company_id) as session:
        with pytest.raises(MediaUnavailable, match="storing a file: S3 bucket silent-bucket") as failed:
            await service.put(session, store, b"photo", content_type="image/jpeg", max_bytes=100)
        assert await session.scalar(select(func.count()).select_from(Media)) == 0
    # two attempts of 0.5 s each, and botocore's backoff between them (under a second)
    assert time.monotonic() - started < 4
    assert "timeout" in failed.value.message.lower()
    assert failed.value.status_code == 503
    # readiness says so, and only degrades: text keeps flowing without media
    elsewhere = replace(runtime, settings=settings, extras={})
    ok, checks = await health.readiness(elsewhere)
    media = next(c for c in checks if c.name == "media")
    assert ok and not media.ok and not media.critical
    assert "checking the bucket: S3 bucket silent-bucket" in media.detail
    assert "media" in health.as_json(ok, checks)["degraded"]


async def test_readiness_names_a_reachable_bucket_and_a_writable_folder(
    runtime: Runtime, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    for settings, detail in [
        (s3_settings(s3_endpoint, bucket), f"S3 bucket {bucket} at {s3_endpoint}, prefix media/, reachable"),
        (
            runtime.settings.model_copy(update={"media_dir": tmp_path}),
            f"local folder {tmp_path}, writable",
        ),
    ]:
        _ok, checks = await health.readiness(replace(runtime, settings=settings, extras={}))
        media = next(c for c in checks if c.name == "media")
        assert (media.ok, media.detail) == (True, detail)


async def test_a_missing_bucket_degrades_readiness_with_the_bucket_named(
    runtime: Runtime, s3_endpoint: str
) -> None:
    settings = s3_settings(s3_endpoint, "no-such-bucket-here")
    _ok, checks = await health.readiness(replace(runtime, settings=settings, extras={}))
    media = next(c for c in checks if c.name == "media")
    assert not media.ok
    assert "S3 bucket no-such-bucket-here" in media.detail and "404" in media.detail


def test_the_s3_store_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="ATENDE_MEDIA_S3_BUCKET"):
        Settings(media_backend="s3")  # type: ignore[call-arg]
