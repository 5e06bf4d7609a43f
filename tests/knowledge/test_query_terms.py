"""How a customer's message becomes BM25 terms: an e-mail's subject line weighs more, and a
long message is ranked by its rarest words."""

from __future__ import annotations

from atende.engine.turn import normalised
from atende.knowledge.retrieval import MAX_TERMS, FullTextRetriever
from atende.knowledge.text import subject_line
from atende.runtime import Runtime
from tests.conftest import CompanyCtx


def test_the_subject_is_a_short_first_line_with_a_body_below() -> None:
    assert subject_line("Vacina contra aftosa\nBom dia, tenho uma dúvida.") == "Vacina contra aftosa"
    assert subject_line("  Silagem  \n\n  Como armazenar?") == "Silagem"
    assert subject_line("Como armazenar a silagem?") == ""  # one line: a chat message
    assert subject_line("Silagem\n   ") == ""  # nothing below it
    assert subject_line("x" * 101 + "\nbody") == ""  # a wrapped paragraph, not a subject


def test_a_message_keeps_its_line_breaks_and_loses_extra_spaces() -> None:
    assert normalised("  Vacina   aftosa \n\n\n  Bom  dia,\tdúvida  ") == "Vacina aftosa\nBom dia, dúvida"


async def _ingest(company: CompanyCtx, source: str, content: str) -> None:
    r = await company.client.post("/v1/documents?wait=true", json={"source": source, "content": content})
    assert r.status_code == 201, r.text


async def _top_sources(runtime: Runtime, company: CompanyCtx, query: str) -> list[str]:
    async with runtime.db.transaction(company.id) as session:
        passages = await FullTextRetriever().retrieve(session, query, 5)
    return [p.title for p in passages]


async def test_the_subject_line_decides_between_two_topics_of_the_body(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await _ingest(company, "silagem.md", "# Silagem\n\nA silagem de milho fica pronta em 30 dias.")
    await _ingest(
        company,
        "vacina.md",
        "# Vacina\n\nA vacina contra aftosa é aplicada em maio e novembro em todo o rebanho, "
        "conforme o calendário oficial de vacinação do estado e as orientações do veterinário.",
    )
    body = "tenho uma dúvida sobre silagem e sobre vacina"
    # one line: the short silagem passage ranks first (BM25 length normalisation)
    assert (await _top_sources(runtime, company, body))[0] == "Silagem"
    # the same words under the subject "Vacina": the subject's topic comes first
    assert (await _top_sources(runtime, company, "Vacina\n" + body))[0] == "Vacina"
    # a subject of another topic keeps the order
    assert (await _top_sources(runtime, company, "Silagem\n" + body))[0] == "Silagem"


async def test_a_long_message_is_ranked_by_its_rarest_words(company: CompanyCtx, runtime: Runtime) -> None:
    common = [f"palavra{i:03d}" for i in range(MAX_TERMS + 20)]
    # every common word is in every passage; "carrapaticida" in one only
    for n in range(4):
        extra = " O carrapaticida se aplica a cada 21 dias." if n == 2 else ""
        await _ingest(company, f"doc{n}.md", f"# Documento {n}\n\n{' '.join(common)}.{extra}")
    query = " ".join(common) + " qual carrapaticida usar"
    assert (await _top_sources(runtime, company, query))[0] == "Documento 2"
