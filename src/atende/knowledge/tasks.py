"""Jobs of the knowledge domain: indexing a submitted document (its chunks), storing the
vectors of the documents that answer by full text meanwhile, re-embedding a company."""

from __future__ import annotations

import uuid

import procrastinate
import structlog

from atende.jobs.queue import RETRY
from atende.knowledge import service
from atende.knowledge.embedding import Embedder, embedder_for
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.settings import EmbeddingsEndpoint, read_section

log = structlog.get_logger(__name__)

EMBED_TASK = "knowledge:embed_company"  # enqueued by the company API when its model changes


def chunking(runtime: Runtime) -> service.Chunking:
    return service.Chunking(runtime.settings.chunk_max_chars, runtime.settings.chunk_overlap_chars)


async def company_embedder(runtime: Runtime, company_id: uuid.UUID) -> Embedder | None:
    """The embedder of the company (its own endpoint, else the deployment's)."""
    async with runtime.db.transaction() as session:
        company = await tenancy.get_company(session, str(company_id))
        own = read_section(company, EmbeddingsEndpoint)
    return embedder_for(runtime, own)


async def index_document(context: procrastinate.JobContext, company_id: str, document_id: str) -> str:
    """Index a document's waiting version: its chunks and postings first, so that it answers
    by full text within seconds (status ``embedding``), its vectors left to the company's
    ``embed_documents`` job (enqueued in the same transaction). A lost connection or a crash
    retries; after the last attempt the document is marked failed, the previous version
    still answering."""
    runtime: Runtime = context.additional_context["runtime"]
    company, document = uuid.UUID(company_id), uuid.UUID(document_id)
    with structlog.contextvars.bound_contextvars(company_id=company_id, document_id=document_id):
        try:
            embedder = await company_embedder(runtime, company)
            done = await service.index_pending(
                runtime.db,
                company,
                document,
                chunking=chunking(runtime),
                embedder=embedder,
                vectors_later=True,
                jobs=runtime.jobs,
            )
        except Exception as exc:
            if context.job is not None and context.job.attempts >= (RETRY.max_attempts or 0):
                await service.fail_pending(runtime.db, company, document, service.describe_failure(exc))
            raise
        return "nothing waiting" if done is None else done.status


async def embed_documents(context: procrastinate.JobContext, company_id: str) -> int:
    """Store the vectors of the company's documents in status ``embedding`` (they answer by
    full text meanwhile), a batch a transaction, each then ``ready``; one such job per
    company at a time, so a hundred documents sent at once take one worker slot, not all of
    them (the bot's turns share the workers). A retry resumes where the last attempt
    stopped; after the last one, the document being embedded is marked failed (its chunks
    still answer by full text)."""
    runtime: Runtime = context.additional_context["runtime"]
    company = uuid.UUID(company_id)
    with structlog.contextvars.bound_contextvars(company_id=company_id):
        try:
            embedder = await company_embedder(runtime, company)
            return await service.embed_waiting(runtime.db, company, embedder)
        except Exception as exc:
            if context.job is not None and context.job.attempts >= (RETRY.max_attempts or 0):
                await service.fail_embedding(runtime.db, company, service.describe_failure(exc))
            raise


async def embed_company(context: procrastinate.JobContext, company_id: str) -> int:
    """Embed the company's chunks that lack a vector of its current model (after the model
    changed); a retry resumes where the previous attempt stopped."""
    runtime: Runtime = context.additional_context["runtime"]
    company = uuid.UUID(company_id)
    embedder = await company_embedder(runtime, company)
    if embedder is None:
        return 0
    count = await service.embed_missing(runtime.db, company, embedder)
    log.info("knowledge.embedded", company_id=company_id, model=embedder.model, chunks=count)
    return count


def blueprint() -> procrastinate.Blueprint:
    """The knowledge tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    bp.task(name="index_document", retry=RETRY, pass_context=True)(index_document)
    bp.task(name="embed_company", retry=RETRY, pass_context=True)(embed_company)
    bp.task(name="embed_documents", retry=RETRY, pass_context=True)(embed_documents)
    return bp
