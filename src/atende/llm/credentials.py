"""The keys of OpenAI-compatible endpoints, as credentials for ``/health/ready``.

Lists the deployment's LLM endpoint (``ATENDE_LLM_BASE_URL`` and key) and each company's own
LLM and embeddings endpoints (keys stored encrypted in its settings). A check is one
``GET {base_url}/models`` with the key and no retry: authenticated, cheap, and it spends no
tokens. A company's endpoint is refused on a private address, as its turns would be.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from atende import netguard
from atende.errors import AtendeError
from atende.observability.credentials import Credential, Verdict
from atende.observability.logging import describe
from atende.openai_compat import client_for
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.crypto import decrypt_secret
from atende.tenancy.settings import ENDPOINTS, read_section


async def endpoints(runtime: Runtime) -> list[Credential]:
    """Every configured OpenAI-compatible endpoint with its key, the deployment's first."""
    settings = runtime.settings
    found: list[Credential] = []
    if settings.llm_base_url:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        found.append(_credential(runtime, "llm", None, settings.llm_base_url, key, company_endpoint=False))
    async with runtime.db.transaction() as session:
        companies = await tenancy.list_companies(session)
    for company in companies:
        for section in ENDPOINTS:  # the company's own LLM and embeddings endpoints
            own = read_section(company, section)
            kind = str(section.key)
            if not own.base_url:
                continue
            base_url = own.base_url
            try:
                key = decrypt_secret(runtime.secret_key, own.api_key) if own.api_key else ""
            except ValueError:
                found.append(_undecryptable(kind, company.id, base_url, str(own.api_key)))
                continue
            found.append(_credential(runtime, kind, company.id, base_url, key, company_endpoint=True))
    return found


def _credential(
    runtime: Runtime, kind: str, company_id: Any, base_url: str, key: str, *, company_endpoint: bool
) -> Credential:
    settings = runtime.settings
    allow_private = settings.llm_allow_private_networks or not company_endpoint

    async def check() -> Verdict:
        return await verify(
            base_url, key, timeout=settings.credential_check_timeout_seconds, allow_private=allow_private
        )

    return Credential(kind, company_id, _host(base_url), _fingerprint(base_url, key), check)


def _undecryptable(kind: str, company_id: Any, base_url: str, stored: str) -> Credential:
    async def check() -> Verdict:
        return Verdict(False, "the stored key cannot be decrypted: was ATENDE_SECRET_KEY changed?")

    return Credential(kind, company_id, _host(base_url), _fingerprint(base_url, stored), check)


async def verify(base_url: str, key: str, *, timeout: float, allow_private: bool) -> Verdict:
    """Whether ``base_url`` accepts ``key``: ``GET /models`` once, within ``timeout``."""
    import openai  # here: a second to import, which the commands that never check a key skip

    guard = netguard.Guard(allow_private, "LLM", "ATENDE_LLM_ALLOW_PRIVATE_NETWORKS")
    try:  # refused here with its reason; the client's transport enforces it on the connection
        await netguard.check_public(
            base_url, allow_private=guard.allow_private, what=guard.what, setting=guard.setting
        )
    except AtendeError as exc:
        return Verdict(False, exc.message)
    client = client_for(base_url, key, timeout=timeout, max_retries=0, guard=guard)
    try:
        await client.models.list()
    except openai.AuthenticationError as exc:
        return Verdict(False, f"the endpoint refused the API key (HTTP {exc.status_code})")
    except openai.PermissionDeniedError as exc:
        return Verdict(False, f"the API key may not use the endpoint (HTTP {exc.status_code})")
    except openai.NotFoundError:
        return Verdict(True, "reachable; it has no /models, so the key was not verified")
    except openai.RateLimitError:
        return Verdict(True, "the key is accepted (rate limited at the moment)")
    except openai.APITimeoutError:
        return Verdict(False, f"no answer within {timeout:g}s")
    except openai.APIConnectionError as exc:
        return Verdict(False, f"unreachable ({describe(exc.__cause__ or exc)})")
    except openai.APIStatusError as exc:
        return Verdict(False, f"the endpoint answered HTTP {exc.status_code}")
    except (openai.OpenAIError, ValueError) as exc:  # a 200 that is no OpenAI-compatible API
        return Verdict(False, f"the endpoint's answer is not an OpenAI-compatible API ({describe(exc)})")
    finally:
        await client.close()
    return Verdict(True, "the key is accepted")


def _host(base_url: str) -> str:
    """What an operator recognises: the host, never the path's or userinfo's secrets."""
    parts = urlsplit(base_url)
    return f"{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def _fingerprint(base_url: str, secret: str) -> str:
    return hashlib.sha256(f"{base_url.rstrip('/')}\0{secret}".encode()).hexdigest()
