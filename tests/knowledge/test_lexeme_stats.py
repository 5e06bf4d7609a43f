"""The per-company lexeme statistics retrieval relies on stay equal to a recount from the
chunks through every ingest, replacement and deletion."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask

RECOUNT = text(
    """
    SELECT l.lexeme, count(*) FROM chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.tsv)) l(lexeme)
    WHERE c.company_id = :c GROUP BY l.lexeme
    UNION ALL SELECT '', count(*) FROM chunks WHERE company_id = :c HAVING count(*) > 0
    """
)
STORED = text("SELECT lexeme, chunks FROM lexeme_stats WHERE company_id = :c")


async def counts(runtime: Runtime, company_id: uuid.UUID) -> tuple[dict[str, int], dict[str, int]]:
    async with runtime.db.transaction() as session:
        recount = {r[0]: int(r[1]) for r in await session.execute(RECOUNT, {"c": company_id})}
        stored = {r[0]: int(r[1]) for r in await session.execute(STORED, {"c": company_id})}
    return recount, stored


async def test_statistics_follow_ingest_replacement_and_deletion(
    company: CompanyCtx, runtime: Runtime
) -> None:
    first = await company.client.post(
        "/v1/documents?wait=true",
        json={
            "source": "a.md",
            "content": "# Frete\n\nFrete grátis acima de R$ 199.\n\n## Prazo\nEntrega em 5 dias.",
        },
    )
    other = await company.client.post(
        "/v1/documents?wait=true",
        json={"source": "b.md", "content": "# Garantia\n\nGarantia de 90 dias contra defeitos."},
    )
    assert first.status_code == other.status_code == 201
    recount, stored = await counts(runtime, company.id)
    assert stored == recount
    assert stored[""] == 3

    replaced = await company.client.post(
        "/v1/documents?wait=true",
        json={"source": "a.md", "content": "# Frete\n\nFrete grátis para todo o Brasil."},
    )
    assert replaced.status_code == 201
    recount, stored = await counts(runtime, company.id)
    assert stored == recount
    assert "praz" not in stored  # the replaced version's words are gone

    deleted = await company.client.delete(f"/v1/documents/{other.json()['document']['id']}")
    assert deleted.status_code == 204
    recount, stored = await counts(runtime, company.id)
    assert stored == recount
    assert "garant" not in stored


async def test_a_long_rambling_question_still_retrieves_the_passage_of_its_rare_words(
    kb_company: CompanyCtx,
) -> None:
    question = (
        "Bom dia, tudo bem com vocês? Eu comprei umas coisas na loja semana passada e queria muito saber, "
        "se não for incômodo, quantas vezes eu posso parcelar no cartão de crédito, obrigado pela atenção"
    )
    body = await ask(kb_company.client, question)
    traces = (await kb_company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    top = traces[-1]["retrieved"][0]
    assert top["section"] == "Formas de pagamento › Meios aceitos"
