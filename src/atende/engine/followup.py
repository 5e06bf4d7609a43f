"""Follow-up questions resolved against the conversation ("e para o Nordeste?", "what about
returns?", "¿y el envío?"): what to look up when a message leans on what was asked before.

Offline (always): a message is an *elliptical follow-up* when it is short, names at most a
few topic words of its own, and opens with a follow-up cue ("e", "and", "y", "what about",
"e quanto a", "¿y…") or leans on a pronoun ("it", "isso", "eso"); then the topic words of
the conversation's previous question are added to it. The previous question is itself
resolved first, so "e o frete?" after "e para o Nordeste?" after "qual o prazo de entrega?"
still carries the delivery topic. Anything else (a question with a topic of its own, "ok",
a new subject) is left exactly as it came: a standalone question must never change.

A cue is not proof: "And what is the population of Warsaw?" opens with one and stands on
its own. So a follow-up found offline is looked up as it came when its own words already
find a passage close in meaning (``stands_alone``: the best passage's dense similarity at
least ``STANDALONE_MEANING``); only otherwise is the previous topic added.

With a company LLM (``Rewriter``), a message that may be a follow-up is rewritten by the
LLM into a standalone question, within a short deadline; on any failure, or a reply that is
not a plausible query, the offline rewrite stands. Pure functions here; the LLM call
behind the ``Rewriter`` port (``llm.rewrite``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from atende.engine import smalltalk
from atende.knowledge.text import QUESTION_WORDS, fold, words

# a message opening with one of these (folded, punctuation dropped) continues the last question
_CUES = {
    "pt": ("e", "e quanto", "quanto a", "e sobre", "mas e", "e se", "e pra", "e para", "tambem"),
    "en": ("and", "what about", "how about", "what if", "and what about", "also"),
    "es": ("y", "y que tal", "que tal", "y si", "y sobre", "y cuanto", "que hay de", "tambien"),
}
CUES = tuple(sorted({cue for cues in _CUES.values() for cue in cues}, key=len, reverse=True))
# words that point back at what was said ("it", "isso", "eso"), folded
PRONOUNS = frozenset(
    fold(w)
    for w in (
        "it its that this they them those these "
        "ele ela eles elas isso isto disso nisso dele dela deles delas nele nela esse essa "
        "desse dessa nesse nessa aquilo "
        "ella ellos ellas eso esto ese esa ello"
    ).split()
)
# "it" that points at nothing ("how long does it take", "is it possible")
_DUMMY_IT = re.compile(
    r"\b(?:(?:does|do|will|would|did|is|can) it (?:take|cost|possible)|it (?:takes|costs))\b"
)
# words that carry no topic (articles, prepositions, auxiliaries), beside the question words
STOP_WORDS = frozenset(
    fold(w)
    for w in (
        "a an the of to in on at for from by with about and or but if as into over than then "
        "is are was were be been being has had having will would do does did get got "
        "i we you me us my our your he she him her his they them their there s so too also just "
        "o a os as um uma uns umas de do da dos das no na nos nas num numa em ao aos à às para pra "
        "pro por pelo pela pelos pelas com sem e ou mas se sobre entre até meu minha seu sua seus "
        "suas lhe lhes é ser foi era são está estão tambem também ja já mais "
        "el la los las un una unos unas del al en con sin y o pero si sobre entre hasta mi mis su "
        "sus le les lo se es fue era son está están tambien también ya mas más cuantas cuántas"
    ).split()
)
SHORT_WORDS = 12  # longer messages are taken as standalone
# a follow-up names at most this many topic words of its own: a few more after a cue ("and
# what about...") than when only a pronoun points back
OWN_TOPIC_WORDS = 3
OWN_TOPIC_WORDS_AFTER_CUE = 5
TOPIC_WORDS = 12  # topic words carried over from the previous question, at most


def topic_words(text: str) -> list[str]:
    """The words of ``text`` that name what it is about (folded, in order, once each)."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in QUESTION_WORDS and word not in STOP_WORDS and word not in PRONOUNS:
            seen.setdefault(word)
    return list(seen)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", fold(text)).split())


def opens_with_cue(text: str) -> bool:
    plain = _plain(text)
    return any(plain == cue or plain.startswith(cue + " ") for cue in CUES)


def leans_on_pronoun(text: str) -> bool:
    return any(word in PRONOUNS for word in words(_DUMMY_IT.sub(" ", _plain(text))))


def is_follow_up(text: str) -> bool:
    """Whether ``text`` reads as an elliptical follow-up: short, few topic words of its own,
    and a cue or a pronoun that points back. "ok" and "Pix?" are not: no cue, no pronoun."""
    if len(words(text)) > SHORT_WORDS:
        return False
    own = len(topic_words(text))
    if opens_with_cue(text):
        return own <= OWN_TOPIC_WORDS_AFTER_CUE
    return own <= OWN_TOPIC_WORDS and leans_on_pronoun(text)


def may_be_follow_up(text: str) -> bool:
    """Looser than ``is_follow_up``: worth asking an LLM about (short enough to lean on the
    conversation)."""
    return len(words(text)) <= SHORT_WORDS and len(topic_words(text)) <= OWN_TOPIC_WORDS_AFTER_CUE


def combined(text: str, previous: str) -> str:
    """The follow-up with the previous question's topic words after it (its own first: they
    are what it asks now)."""
    own = set(topic_words(text))
    carried = [w for w in topic_words(previous) if w not in own][:TOPIC_WORDS]
    return f"{text.strip()} {' '.join(carried)}".strip()


def previous_topic(history: tuple[tuple[str, str], ...]) -> str | None:
    """The conversation's last customer question, itself resolved against the ones before it
    (small talk skipped); ``None`` when the customer asked nothing yet."""
    topic: str | None = None
    for author, text in history:
        if author != "customer" or smalltalk.classify(text):
            continue
        query = smalltalk.without_greeting(" ".join(text.split()))
        if not topic_words(query):
            continue
        topic = combined(query, topic) if topic and is_follow_up(query) else query
    return topic


@dataclass(frozen=True)
class Resolution:
    """What to look up for a message, and how it was found."""

    query: str
    how: str  # standalone | no_history | offline | stands_alone | llm | llm_failed
    previous: str | None = None  # the earlier question it leans on
    error: str | None = None  # why the LLM's rewrite was not used


def resolve_offline(query: str, history: tuple[tuple[str, str], ...]) -> Resolution:
    previous = previous_topic(history)
    if previous is None:
        return Resolution(query, "no_history")
    if not is_follow_up(query):
        return Resolution(query, "standalone", previous)
    return Resolution(combined(query, previous), "offline", previous)


# the dense (e5 cosine) similarity at which a message's own words found what it asks about,
# calibrated on the multi-turn set built from the development data (docs/EVALUATION.md): the
# elliptical follow-ups' best passages had a median of 0.81-0.83, questions about another
# topic opened by a cue 0.87-0.88. Another embedder's scale differs: with one whose scores
# stay below this, every follow-up found offline is rewritten (what happened before the check).
STANDALONE_MEANING = 0.84


STANDALONE_TOPIC_WORDS = 3  # fewer ("e o prazo?") is a fragment: short texts look alike to e5


def stands_alone(message: str, best_meaning: float | None) -> bool:
    """Whether a message names enough of its own topic and its words found a passage close
    enough in meaning (its best passage's dense score) to be looked up as it came."""
    return (
        best_meaning is not None
        and best_meaning >= STANDALONE_MEANING
        and len(topic_words(message)) >= STANDALONE_TOPIC_WORDS
    )


def kept_as_asked(resolution: Resolution, asked: str) -> Resolution:
    """A follow-up found offline that ``stands_alone``: looked up as it came."""
    return Resolution(asked, "stands_alone", resolution.previous, resolution.error)


class Rewriter(Protocol):
    """An LLM that rewrites a follow-up into a standalone question (``llm.rewrite``)."""

    name: str

    async def rewrite(self, message: str, language: str, history: tuple[tuple[str, str], ...]) -> str: ...


MAX_REWRITE_CHARS = 400


async def resolve(
    query: str, language: str, history: tuple[tuple[str, str], ...], rewriter: Rewriter | None = None
) -> Resolution:
    """What to look up for ``query`` given the conversation so far (``history``: (author,
    text), oldest first, without this message)."""
    offline = resolve_offline(query, history)
    if rewriter is None or offline.previous is None or not may_be_follow_up(query):
        return offline
    try:
        rewritten = " ".join((await rewriter.rewrite(query, language, history)).split())
    except Exception as exc:  # the LLM's failure costs the rewrite, never the turn
        return Resolution(offline.query, "llm_failed", offline.previous, f"{type(exc).__name__}: {exc}"[:300])
    if not rewritten or len(rewritten) > MAX_REWRITE_CHARS:
        return Resolution(
            offline.query, "llm_failed", offline.previous, "the LLM's rewrite was empty or too long"
        )
    return Resolution(rewritten, "llm", offline.previous)
