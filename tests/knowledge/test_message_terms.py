"""Words most of a company's customers write weigh less when a question is ranked: they
match the wrong passages as well as the right one (``knowledge.message_terms``). Each
customer has one vote per word, however many messages they send."""

from __future__ import annotations

from sqlalchemy import func, select

from atende.knowledge import message_terms
from atende.knowledge.models import MessageLexemeStat
from atende.knowledge.retrieval import CONTACTS_MIN, FullTextRetriever
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

DOCUMENTS = {
    "fatura.md": "# Fatura do cartão\n\nA fatura do cartão fecha no dia 5 e vence no dia 10.",
    "bloqueio.md": "# Cartão bloqueado\n\nUm cartão bloqueado é liberado pelo aplicativo, em Conta.",
    "digital.md": "# Fatura digital\n\nA fatura digital chega por e-mail todo mês.",
    "parcelas.md": "# Parcelar a fatura\n\nA fatura do cartão pode ser parcelada em até 12 vezes.",
    "adicional.md": "# Cartão adicional\n\nO cartão adicional sai na fatura do titular.",
    "loja.md": "# Loja de Curitiba\n\nA loja de Curitiba abre às 9h, na rua XV.",
}
QUESTION = "Moro em Curitiba. E a fatura do cartão?"
TOPICS = [
    "senha",
    "aplicativo",
    "limite",
    "entrega",
    "troca",
    "boleto",
    "pix",
    "endereço",
    "horário",
    "cadastro",
]


def customers_from_curitiba(count: int) -> list[str]:
    """What this company's customers write: every one of them says where they live."""
    return [
        f"Bom dia, moro em Curitiba e tenho uma dúvida sobre {TOPICS[i % len(TOPICS)]}" for i in range(count)
    ]


async def ingest_documents(company: CompanyCtx) -> None:
    for source, content in DOCUMENTS.items():
        r = await company.client.post("/v1/documents?wait=true", json={"source": source, "content": content})
        assert r.status_code == 201, r.text


async def top_titles(runtime: Runtime, company: CompanyCtx, query: str = QUESTION) -> list[str]:
    async with runtime.db.transaction(company.id) as session:
        return [p.title for p in await FullTextRetriever().retrieve(session, query, 10)]


async def learn(runtime: Runtime, company: CompanyCtx, messages: list[str]) -> int:
    """Learn from ``messages``, each of another customer."""
    async with runtime.db.transaction(company.id) as session:
        return await message_terms.learn(session, [[m] for m in messages])


async def test_a_word_every_customer_writes_no_longer_decides_the_answer(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await ingest_documents(company)
    # the city is the knowledge base's rarest word in the question: the store comes first
    assert (await top_titles(runtime, company))[0] == "Loja de Curitiba"
    await learn(runtime, company, customers_from_curitiba(CONTACTS_MIN * 2))
    # every customer lives there: what this one asks about decides
    ranked = await top_titles(runtime, company)
    assert ranked[0] == "Fatura do cartão"
    assert "Loja de Curitiba" in ranked  # weighs less, still matches
    # a question about the store itself still finds it
    assert (await top_titles(runtime, company, "Que horas abre a loja de Curitiba?"))[0] == "Loja de Curitiba"


async def test_too_few_customers_change_nothing(company: CompanyCtx, runtime: Runtime) -> None:
    await ingest_documents(company)
    before = await top_titles(runtime, company)
    await learn(runtime, company, customers_from_curitiba(CONTACTS_MIN - 1))
    assert await top_titles(runtime, company) == before
    # from CONTACTS_MIN on, they weigh
    await learn(runtime, company, customers_from_curitiba(CONTACTS_MIN))
    assert (await top_titles(runtime, company))[0] == "Fatura do cartão"


async def test_learning_again_replaces_the_statistics(company: CompanyCtx, runtime: Runtime) -> None:
    await ingest_documents(company)
    assert await learn(runtime, company, customers_from_curitiba(CONTACTS_MIN * 2)) > 0
    # later, customers write from elsewhere: Curitiba weighs fully again
    await learn(runtime, company, [f"Moro em Londrina e pergunto de {t}" for t in TOPICS * 30])
    async with runtime.db.transaction(company.id) as session:
        rows = await session.execute(select(MessageLexemeStat.lexeme, MessageLexemeStat.contacts))
        counted = dict(rows.all())
    assert counted[""] == len(TOPICS) * 30
    assert not any(lexeme.startswith("curitib") for lexeme in counted)
    assert any(lexeme.startswith("londrin") for lexeme in counted)
    assert (await top_titles(runtime, company))[0] == "Loja de Curitiba"
    # no messages: no statistics, every term weighs 1
    assert await learn(runtime, company, []) == 0
    async with runtime.db.transaction(company.id) as session:
        assert await session.scalar(select(func.count()).select_from(MessageLexemeStat)) == 0


async def test_one_customer_repeating_a_word_has_one_vote(company: CompanyCtx, runtime: Runtime) -> None:
    await ingest_documents(company)
    others = [
        [f"Bom dia, tenho uma dúvida sobre {TOPICS[i % len(TOPICS)]}"] for i in range(CONTACTS_MIN + 50)
    ]
    # one visitor says where they live in 210 messages: still one customer of 251
    one_loud = [f"Moro em Curitiba, Curitiba! ({i})" for i in range(210)]
    async with runtime.db.transaction(company.id) as session:
        await message_terms.learn(session, [*others, one_loud])
        rows = await session.execute(select(MessageLexemeStat.lexeme, MessageLexemeStat.contacts))
        counted = dict(rows.all())
    assert counted[""] == CONTACTS_MIN + 51 and counted["curitib"] == 1
    assert (await top_titles(runtime, company))[0] == "Loja de Curitiba"  # the city still decides
