"""Vectors of a QA set's chunks saved by an earlier run, so that measuring again does not
embed them again (the support set's 2,433 chunks take about 15 minutes on two cores).

A folder of ``.npz`` files, each with ``keys`` (the SHA-1 of the text that was embedded,
``knowledge.embedding.passage_text``), ``vectors`` and ``model``, as
``scripts/ranker_study.py build`` writes them. ``atende eval --vectors DIR`` embeds through
``SavedVectors``: a chunk whose text and model match a saved vector gets it, any other is
embedded by the model as usual, so a stale file costs time, never correctness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from atende.knowledge.embedding import Embedder, Vector


def text_key(body: str) -> str:
    return hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()


class SavedVectors:
    """``inner`` with the chunk vectors saved in ``folder`` (for ``inner``'s model) at hand."""

    def __init__(self, inner: Embedder, folder: Path) -> None:
        self.inner = inner
        self.model = inner.model
        self.saved: dict[str, Vector] = {}
        for path in sorted(folder.glob("*.npz")):
            data = np.load(path)
            if str(data["model"]) != inner.model:
                continue
            for key, vector in zip(data["keys"].tolist(), data["vectors"], strict=True):
                self.saved[str(key)] = [float(x) for x in vector]
        self.reused = 0

    async def passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[Vector]:
        keys = [text_key(t) for t in texts]
        missing = [t for t, k in zip(texts, keys, strict=True) if k not in self.saved]
        fresh = iter(await self.inner.passages(missing, progress) if missing else [])
        found = [self.saved[k] if k in self.saved else next(fresh) for k in keys]
        self.reused += len(texts) - len(missing)
        if progress is not None:
            progress(len(texts) - len(missing))
        return found

    async def query(self, text: str) -> Vector:
        return await self.inner.query(text)
