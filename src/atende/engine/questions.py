"""The questions a customer's message asks: a long e-mail carries a greeting, a story, a
signature and often two or three questions, and each must be looked up on its own.

``split`` (rules, pure) drops what asks nothing — quoted replies, the signature and
sign-off, greetings, thanks, a bare "preciso de ajuda" — and keeps the sentences that ask:
a question mark, an opening interrogative ("qual", "how much", "cuánto"), or a request form
("gostaria de saber", "preciso saber", "como faço", "I would like to know", "can you",
"quisiera saber"). A question too short to stand alone ("E a dose?", "Está correto?") is
merged into the question beside it, or given the sentence before it; every question keeps
the e-mail's subject line. ``distinct`` (model-based, over the embedder's vectors of the
questions) merges near-duplicates ("Como tratar? Qual o tratamento?") and, past the cap,
keeps the questions closest to the message's topic.

A message with fewer than two questions is not split: the turn looks it up whole, as it
always did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_PORTUGUESE, STOPWORDS_SPANISH

from atende.engine import smalltalk
from atende.knowledge.text import QUESTION_WORDS, fold, subject_line, words

MAX_QUESTIONS = 3
QUESTION_CHARS = 400  # a question's sentence(s), with its context, at most
DUPLICATE_SIMILARITY = 0.95  # e5 cosine of two questions that ask the same thing (see EVALUATION.md)
# The same for their queries when these add the subject line or a context sentence (the
# turn compares the vectors its lookups use): on the support e-mails' first 300 (77 split)
# 0.97 keeps the questions 0.95 keeps of the questions alone in 75, 0.95 in 70.
QUERY_DUPLICATE_SIMILARITY = 0.97


@dataclass(frozen=True)
class Asked:
    """One question of a message: ``text`` as the customer wrote it (the reply names it),
    ``query`` what is looked up (the subject line, any context sentence, the question)."""

    text: str
    query: str


# Words that name no topic: a question made only of these and the question words is a
# bare request for help ("Preciso de sua ajuda urgente") or elliptical ("O que fazer?").
_EMPTY = frozenset(
    fold(w)
    for w in (
        "ajuda ajudar ajudem duvida dúvida duvidas dúvidas informação informações informacao "
        "orientação orientações orientacao sugestão sugestões pergunta perguntas favor urgente "
        "urgência respeito sobre assunto algo coisa coisas isso isto disso alguém alguem devemos "
        "devo deve fazer feito seria certo correto correta possível possivel resposta responder "
        "obrigado obrigada agradeço aguardo atenção senhor senhora senhores prezado prezados "
        "caro cara amigo amigos pessoal equipe gostaria saber queria quero preciso necessito "
        "help question questions information advice urgent thing something anything right "
        "correct possible answer please thanks thank know like "
        "ayuda ayudar duda dudas información informacion orientación consulta pregunta "
        "preguntas urgente algo cosa esto eso correcto posible respuesta gracias quisiera "
        "necesito saber hacer debo debemos gustaría gustaria señor señores estimado estimados"
    ).split()
)
_STOP = frozenset(fold(w) for w in (*STOPWORDS_PORTUGUESE, *STOPWORDS_EN, *STOPWORDS_SPANISH))

# A sentence that asks without a question mark: an opening interrogative ...
_OPENS_ASKING = re.compile(
    r"^(e |and |y )?(qual|quais|quanto|quanta|quantos|quantas|onde|o que|por que|sera que|e possivel"
    r"|tem como|ha como|existe algum|existe alguma|como (faco|faz|devo|posso|se|e|sao|seria|\w+[aei]r)"
    r"|what|which|how|where|why|can (you|i|we)|could (you|i|we)|is (it|there)|are there|do you|does"
    r"|cual|cuales|cuanto|cuanta|cuantos|cuantas|donde|que|por que|es posible|hay|como (hago|puedo|se|debo))"
    r"( |$)"
)
# ... and, for ``asks`` only (whether a short chat message wants an answer), "when": in an
# e-mail it as often opens a story, so the split into questions keeps to the openers above
_OPENS_WHEN = re.compile(r"^(e |and |y )?(quando|ate quando|when|cuando|hasta cuando)( |$)")
# ... or a request form anywhere in it, followed by what it asks about
_REQUEST = re.compile(
    r"(gostaria(mos)? de (saber|obter|receber|uma|um|informac\w*|orientac\w*)|queria (saber|uma|um)"
    r"|quero saber|queremos saber|precis[oa]mos (de |saber)|preciso (de |saber|que)|necessito (de |saber)"
    r"|gostaria(mos)? que|solicito|peco|pe[cç]o que"
    r"|(voces|vcs) (podem|poderiam|tem|teriam)|podem me|poderiam me|pode me|me (informar|informe|indicar"
    r"|indiquem|explicar|expliquem|enviar|envie|mandar|passar)|como (faco|fazer|devo|posso)"
    r"|i would like to know|i'?d like to know|i want to know|i need (to know|a|an|some|help with)"
    r"|can you|could you|please (tell|let|send|explain|advise)|how (do|can|should) i"
    r"|quisiera (saber|un|una)|me gustaria (saber|un|una)|queria saber|necesito (saber|un|una|que)"
    r"|podrian|pueden (decirme|indicarme|enviarme)|como (hago|puedo))"
    r"(?P<rest> .*|$)"
)
# Where a reply quotes the message it answers, or a forwarded one starts: nothing below is new
_QUOTE_HEADER = re.compile(
    r"^((em|on|el) .{0,120}(escreveu|wrote|escribio):?|-{2,} ?(original message|mensagem original"
    r"|mensaje original|forwarded message|mensagem encaminhada) ?-{2,}|(de|from): .*@.*)$"
)
# A line the signature starts at: the sign-off, "--", a mobile's footer
_SIGN_OFF = re.compile(
    r"^(--|atenciosamente|att|atte|cordialmente|abracos?|abs|um abraco|grat[oa]|saudacoes|desde ja"
    r"|(muito )?obrigad[oa]|agradeco|no aguardo|aguardo (retorno|resposta|contato)|best( regards)?"
    r"|(kind |warm )?regards|sincerely|cheers|thanks( in advance)?|thank you|saludos|un saludo"
    r"|atentamente|(muchas )?gracias|enviado do meu|sent from my|enviado desde mi)\b"
)
SIGN_OFF_CHARS = 60  # a longer line is a sentence of the message, not a sign-off
# a sentence ends at ? ! …, at a full stop after a word (not "St." or "y. pestis"), and
# where a question mark or full stop is followed by the next sentence without a space
_SENTENCE_END = re.compile(
    r"(?<=[?!…])\s+|(?<=\w\w\w\.)\s+|(?<=\?)(?=[^\W\d_])|(?<=[^\W\d_]{2}[.!])(?=[A-ZÀ-Ý])"
)
_LIST_ITEM = re.compile(r"^([-*•·]|\d{1,2}[ªº°]?[).:-]|[a-e]\))\s*")


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", fold(text)).split())


def _body(message: str) -> tuple[str, list[str]]:
    """The subject line and the lines of the message the customer wrote now: no quoted
    reply, forwarded message or signature."""
    lines = [" ".join(line.split()) for line in message.splitlines()]
    lines = [line for line in lines if line]
    subject = subject_line("\n".join(lines))
    if subject and (_asks(subject) or smalltalk.classify(subject)):
        subject = ""  # a first line that asks (or greets) is the message, not its subject
    kept: list[str] = []
    for line in lines[1:] if subject else lines:
        plain = _plain(line)
        if line.startswith(">") or _QUOTE_HEADER.match(fold(line)):
            break
        if kept and len(line) <= SIGN_OFF_CHARS and _SIGN_OFF.match(plain) and "?" not in line:
            break
        kept.append(line)
    return subject, kept


def _sentences(lines: Sequence[str]) -> list[str]:
    """Sentences across the e-mail's hard line breaks (a line that ends without punctuation
    goes on in the next one)."""
    paragraphs: list[list[str]] = []
    for line in lines:
        if not paragraphs or _LIST_ITEM.match(line) or paragraphs[-1][-1].endswith(":"):
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
    return [s.strip() for lines_ in paragraphs for s in _SENTENCE_END.split(" ".join(lines_)) if s.strip()]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that name a topic (no stop, question or help-asking words)."""
    return [w for w in words(text) if w not in _STOP and w not in QUESTION_WORDS and w not in _EMPTY]


def _asks(sentence: str) -> bool:
    """Whether ``sentence`` asks something (a bare request for help does not)."""
    plain = _plain(_LIST_ITEM.sub("", sentence, count=1))
    if "?" in sentence or _OPENS_ASKING.match(plain):
        return True
    request = _REQUEST.search(plain)
    return request is not None and bool(content_words(request.group("rest")))


def asks(message: str) -> bool:
    """Whether ``message`` asks anything: one of its sentences (its subject line included,
    greetings left out) ends in a question mark, opens with an interrogative or makes a request
    about a topic. A comment, a thank-you or a greeting alone asks nothing."""
    subject, lines = _body(message)
    sentences = [_without_greeting(s) for s in _sentences([subject, *lines] if subject else lines)]
    return any(_asks(s) or _OPENS_WHEN.match(_plain(s)) for s in sentences if s)


def _without_greeting(sentence: str) -> str:
    """``sentence`` without the greeting it opens with ("Boa tarde, gostaria de saber...")."""
    plain = _plain(sentence)
    rest = smalltalk.without_greeting(sentence)
    if rest == sentence or not rest:
        return sentence
    # cut the original after as many of its words as the greeting had
    dropped = len(plain.split()) - len(rest.split())
    tokens = sentence.split()
    kept = tokens[dropped:] if 0 < dropped < len(tokens) else tokens
    return " ".join(kept).lstrip(",;:.!- ")


@dataclass
class _Question:
    sentences: list[str]
    context: str = ""  # the sentence before an elliptical question

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def split(message: str, limit: int = MAX_QUESTIONS) -> list[Asked]:
    """The questions ``message`` asks, at most ``limit`` (rules only; see the module's
    docstring). Fewer than two: ``[]`` (the message is looked up whole)."""
    if limit < 2:
        return []
    subject, lines = _body(message)
    sentences = [_without_greeting(s) for s in _sentences(lines)]
    sentences = [s for s in sentences if s and not smalltalk.classify(s)]
    found: list[_Question] = []
    last_asked = -2  # index of the sentence the latest question ends at
    for i, sentence in enumerate(sentences):
        if not _asks(sentence):
            continue
        short = len(content_words(sentence)) < 2
        if short and found and last_asked == i - 1:
            found[-1].sentences.append(sentence)  # "Qual a dose? E para bezerros?"
        elif found and last_asked == i - 1 and len(content_words(found[-1].text)) < 2:
            found[-1].sentences.append(sentence)  # "O que fazer? Como tratar a mastite?"
        else:
            context = sentences[i - 1] if short and i > 0 else ""
            found.append(_Question([sentence], context))
        last_asked = i
    # an elliptical question with nothing to lean on but the subject stays (the subject
    # is its topic); one with neither asks nothing we could look up
    found = [q for q in found if content_words(f"{subject} {q.context} {q.text}")]
    if len(found) < 2:
        return []
    return [_asked(subject, q) for q in found][: limit * 2]  # ``distinct`` caps the rest


def _asked(subject: str, question: _Question) -> Asked:
    asked = " ".join(part for part in (question.context, question.text) if part)[:QUESTION_CHARS]
    query = f"{subject}\n{asked}" if subject else asked
    return Asked(question.text[:QUESTION_CHARS], query)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def distinct(
    asked: Sequence[Asked],
    vectors: Sequence[Sequence[float]] | None,
    limit: int = MAX_QUESTIONS,
    *,
    duplicate: float = DUPLICATE_SIMILARITY,
) -> list[Asked]:
    """``asked`` with near-duplicates merged (each question's vector, from the embedder,
    against the ones kept before it) and at most ``limit`` kept: those closest to the
    message's topic (the mean of the vectors), in the message's order. Without vectors,
    the first ``limit``."""
    if vectors is None:
        return list(asked[:limit])
    kept: list[int] = []
    merged: dict[int, Asked] = {}
    for i, vector in enumerate(vectors):
        twin = next((k for k in kept if _cosine(vectors[k], vector) >= duplicate), None)
        if twin is None:
            kept.append(i)
            merged[i] = asked[i]
        else:
            first = merged[twin]
            merged[twin] = replace(first, text=f"{first.text} {asked[i].text}"[:QUESTION_CHARS])
    if len(kept) > limit:
        centre = [sum(column) / len(kept) for column in zip(*(vectors[k] for k in kept), strict=True)]
        closest = sorted(kept, key=lambda k: -_cosine(vectors[k], centre))[:limit]
        kept = sorted(closest)
    return [merged[k] for k in kept]
