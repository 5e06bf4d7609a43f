"""The default media store: a folder on this machine (``ATENDE_MEDIA_DIR``, else the
``media`` folder inside ``ATENDE_DATA_DIR``).

A file is written to a temporary file in the store's own ``.incoming`` folder (the same
file system), flushed to disk, then renamed into ``<company id>/<media id>``: a reader sees
the whole file or none, and a crash leaves at most a stray temporary file. Paths are built
from checked keys only and resolved again under the root, so nothing reaches outside it.

Every process that serves or stores media must see the same folder: one machine, or a
volume every API and worker container mounts (deploy/docker-compose.yml). Several machines
share an S3 bucket instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from atende.media.store import CHUNK_BYTES, Blob, MediaMissing, MediaUnavailable, Spooled, checked_key

INCOMING = ".incoming"


class LocalDirectory:
    """Media files under ``root`` (created at the first file, or by the readiness check)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    @property
    def description(self) -> str:
        return f"local folder {self.root}"

    def path_of(self, key: str) -> Path:
        path = (self.root / checked_key(key)).resolve()
        if not path.is_relative_to(self.root):  # a symlink planted inside the root
            raise ValueError(f"media key {key!r} resolves outside {self.root}")
        return path

    async def put(self, key: str, spooled: Spooled, *, content_type: str) -> None:
        target = self.path_of(key)
        try:
            await asyncio.to_thread(self._write, target, spooled.file)
        except OSError as exc:
            raise MediaUnavailable(f"cannot write to the media folder {self.root}: {exc.strerror}") from exc

    def _write(self, target: Path, source: IO[bytes]) -> None:
        incoming = self.root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = incoming / uuid.uuid4().hex
        try:
            with temporary.open("xb") as out:
                source.seek(0)
                shutil.copyfileobj(source, out, CHUNK_BYTES)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
            _sync_folder(target.parent)  # the rename itself survives a power cut
        finally:
            temporary.unlink(missing_ok=True)

    async def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Blob:
        path = self.path_of(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise MediaMissing(f"the file of media {key.rsplit('/', 1)[-1]} is missing") from exc
        except OSError as exc:
            raise MediaUnavailable(f"cannot read the media folder {self.root}: {exc.strerror}") from exc
        if byte_range is None:
            return Blob(os.fstat(file.fileno()).st_size, _read(file, None))
        start, end = byte_range
        file.seek(start)
        return Blob(end - start + 1, _read(file, end - start + 1))

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise MediaUnavailable(
                f"cannot delete from the media folder {self.root}: {exc.strerror}"
            ) from exc

    async def check(self) -> str:
        """Writable now, without creating anything: a folder not made yet is fine when the
        nearest existing folder above it is writable (the first file creates it)."""

        def state() -> str:
            if self.root.exists():
                if not self.root.is_dir():
                    raise MediaUnavailable(f"the media folder {self.root} is not a folder")
                if not os.access(self.root, os.W_OK | os.X_OK):
                    raise MediaUnavailable(f"the media folder {self.root} is not writable by this process")
                return "writable"
            parent = next(p for p in self.root.parents if p.exists())
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise MediaUnavailable(
                    f"cannot create the media folder {self.root}: {parent} is not a writable folder"
                )
            return "created at the first file"

        return f"{self.description}, {await asyncio.to_thread(state)}"


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


async def _read(file: IO[bytes], length: int | None) -> AsyncIterator[bytes]:
    """The file's bytes from where it stands, all of them or ``length``."""
    left = length
    try:
        while left is None or left > 0:
            piece = await asyncio.to_thread(
                file.read, CHUNK_BYTES if left is None else min(CHUNK_BYTES, left)
            )
            if not piece:
                return
            if left is not None:
                left -= len(piece)
            yield piece
    finally:
        file.close()
