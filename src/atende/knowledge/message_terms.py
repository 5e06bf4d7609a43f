"""What a company's customers usually write: the lexeme statistics of their messages.

BM25 weighs a question's terms by how rare they are in the knowledge base. An e-mail also
carries words that are rare in the answers yet common in what customers write: the
register ("tenho", "gostaria", "agradeço a atenção"), where they are ("Sul da Bahia"), and
the products most of them ask about. These match the wrong passages as well as the right
one, and a long message has dozens of them. So each term's weight in the BM25 statement is
also multiplied by its rarity among the company's recent customers,

    ln((n + 1) / (m + 1)) / ln(n + 1)     (at least ``MESSAGES_FLOOR``)

where ``n`` customers (contacts) were counted and ``m`` of them wrote the term: 1 for a word
no customer wrote before, 0.5 for one about a twentieth of 400 customers use,
``MESSAGES_FLOOR`` for the commonest. Each customer has one vote per term, however many
messages they sent: the web chat's visitors are anonymous, and one of them repeating a word
in 210 messages must not make it weigh less for everyone (it did when messages were
counted). Below ``CONTACTS_MIN`` customers the statistics are too thin and every term weighs
1. On the support set (real e-mails, each question its own customer) this alone raised
hybrid recall@5 from 0.466 to about 0.49 (``docs/EVALUATION.md``).

The statistics are rebuilt by an hourly job (``engine.tasks.learn_message_terms``, which
skips a company no customer wrote to since) or ``atende learn-terms`` from the latest
``SAMPLE_CONVERSATIONS`` conversations customers wrote in, up to ``PER_CONVERSATION`` latest
customer messages of each (so one talkative customer cannot push the others out of the
sample), and by ``atende eval`` from the questions it does not ask in the same pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.scope import company_of
from atende.knowledge.models import MessageLexemeStat
from atende.knowledge.retrieval import CONTACTS_MIN, MESSAGES_FLOOR, query_terms, topic_stems
from atende.knowledge.text import topic_text

SAMPLE_CONVERSATIONS = 5000
PER_CONVERSATION = 5
_BATCH = 200
__all__ = [
    "CONTACTS_MIN",
    "MESSAGES_FLOOR",
    "PER_CONVERSATION",
    "SAMPLE_CONVERSATIONS",
    "counted_up_to",
    "learn",
    "message_lexemes",
]

_INSERT = text(
    "INSERT INTO message_lexeme_stats (company_id, lexeme, contacts, newest_seq)"
    " SELECT :company, t.lexeme, t.contacts, CASE WHEN t.lexeme = '' THEN CAST(:newest AS bigint) END"
    " FROM unnest(CAST(:lexemes AS text[]), CAST(:counts AS integer[])) AS t(lexeme, contacts)"
)


async def message_lexemes(session: AsyncSession, messages: Sequence[str]) -> list[frozenset[str]]:
    """Each message's terms, as a question's are found for retrieval (its topic, stemmed
    under every language's configuration: ``retrieval.question_stems``, ``query_terms``)."""
    found: list[frozenset[str]] = []
    for start in range(0, len(messages), _BATCH):
        batch = [topic_text(m) for m in messages[start : start + _BATCH]]
        found.extend(frozenset(query_terms(stems)) for stems in await topic_stems(session, batch))
    return found


async def counted_up_to(session: AsyncSession) -> int | None:
    """The newest customer message (``seq``) the company's statistics counted; None when
    there are none, or they were counted from texts given."""
    return await session.scalar(select(MessageLexemeStat.newest_seq).where(MessageLexemeStat.lexeme == ""))


async def learn(
    session: AsyncSession, contacts: Sequence[Sequence[str]], *, newest_seq: int | None = None
) -> int:
    """Replace the company's statistics with those of ``contacts``: each one customer's
    texts (the newest of all of them ``newest_seq``), one vote per customer for each term any
    of their texts uses; returns how many lexemes were counted. One transaction: a question
    ranked meanwhile sees the old statistics or the new ones."""
    company_id = company_of(session)
    people = [list(texts) for texts in contacts if texts]
    found = iter(await message_lexemes(session, [body for texts in people for body in texts]))
    counts: Counter[str] = Counter()
    for texts in people:
        counts.update(frozenset().union(*(next(found) for _ in texts)))
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"message-lexemes:{company_id}"}
    )
    await session.execute(delete(MessageLexemeStat))
    if people:
        ordered = sorted(counts.items())
        await session.execute(
            _INSERT,
            {
                "company": company_id,
                "lexemes": ["", *(lexeme for lexeme, _ in ordered)],
                "counts": [len(people), *(n for _, n in ordered)],
                "newest": newest_seq,
            },
        )
    return len(counts)
