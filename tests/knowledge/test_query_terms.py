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


async def _top_sources(runtime: Runtime, company: CompanyCtx, query: str, k: int = 5) -> list[str]:
    async with runtime.db.transaction(company.id) as session:
        passages = await FullTextRetriever().retrieve(session, query, k)
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
    rare = [f"raro{i:03d}" for i in range(MAX_TERMS + 2)]
    # each rare word in one passage of its own; "leite" in every passage, and alone in one
    for n in range(0, len(rare), 6):
        await _ingest(company, f"raros{n}.md", f"# Raros {n}\n\nleite {' '.join(rare[n : n + 6])}.")
    await _ingest(company, "leite.md", "# Só leite\n\nleite leite leite.")
    # the message names every rare word and "leite": more terms than are ranked
    found = await _top_sources(runtime, company, "leite " + " ".join(rare), k=20)
    assert found and found[0].startswith("Raros")
    # "leite", the commonest, is the term left out: the passage that only has it is not found
    assert "Só leite" not in found
    # a short question ranks by every term, "leite" too
    assert "Só leite" in await _top_sources(runtime, company, "leite raro000", k=20)


async def test_a_message_with_no_topic_words_finds_nothing_and_does_not_fail(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await _ingest(company, "silagem.md", "# Silagem\n\nA silagem de milho fica pronta em 30 dias.")
    assert await _top_sources(runtime, company, "\u0301") == []  # a lone combining accent
