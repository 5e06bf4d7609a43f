"""Does a customer message ask for a person? (pt-BR, English, Spanish)

Rules over words, not a model: a message asks for a person when a word for a person ("atendente",
"humano", "agent", "asesor"...) comes near a request for one ("falar com", "talk to", "pásame
con"...), when it is little more than such a word ("atendente!!", "agent please"), or when it
refuses the bot ("não quero falar com robô"). Words are folded (no accents, lower case) and a
misspelt word is read as the word it is one or two edits from (``rapidfuzz``), so "atendnte",
"umano" and "representitive" count. Questions *about* the people ("what time do your agents
work?", "o atendente de ontem foi grosseiro") do not. Measured on
``tests/engine/data/handoff_intent.jsonl`` (see ``docs/HANDOFF.md``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz.distance import OSA

from atende.knowledge.text import fold

PEOPLE = frozenset(
    # pt
    "atendente atendentes humano humana humanos pessoa pessoas operador operadora consultor consultora "
    "gerente supervisor supervisora responsavel funcionario funcionaria representante agente alguem "
    "vendedor vendedora especialista "
    # en
    "human humans person agent agents representative rep operator someone somebody associate manager "
    "staff employee people specialist advisor "
    # es
    "persona personas asesor asesora ejecutivo ejecutiva alguien encargado encargada responsable".split()
)
ASK = frozenset(
    # pt
    "falar fala conversar converse chamar chama chame passar passa passe transferir transfere transfira "
    "encaminhar encaminha encaminhe quero queria gostaria preciso atenda atender atendam atendido atendida "
    "contato ligar liga cade poe coloca bota direcionar direciona direcione responder responda "
    "ligacao retorno "
    # en
    "talk speak chat connect transfer want need get reach put contact escalate where call routed route "
    "hand rather connected speaking talking have "
    # es
    "hablar habla hable comunicar comunicarme comunicame pasar pasame pase pasen transferir transfiere "
    "transfiera quiero quisiera necesito contactar contactarme atienda atiendan comuniqueme escalar donde "
    "prefiero atenderme conectame conectar conecta exijo exigir responda responde derivar derive deriva "
    "derivame contacte contacten llame llamen pasas transfiereme comunica comuniques".split()
)
# "human" as an adjective of these ("atendimento humano", "live agent", "real person")
QUALIFIED = re.compile(
    r"\b(atendimento (humano|pessoal)|atencao humana|atencion humana|atencion personal"
    r"|(suporte|soporte|support|ayuda) humano|carne (e osso|y hueso)|flesh and blood"
    r"|alguem humano|alguien humano|(tem|ha|hay|is there|anyone|anybody)"
    r" (alguem|alguien|someone|anyone|somebody|a human|uma pessoa|una persona)"
    r" (ai|ahi|there|real|de verdade|de verdad)|human (support|service|help|agent|being)"
    r"|atendimento (com|por) (uma )?pessoa|live (agent|person)|real (person|human|people|agent)"
    r"|actual (person|human)"
    r"|pessoa (real|de verdade)|ser humano|persona (real|de verdad)|alguem (real|de verdade)"
    r"|gente de verdade|una persona de verdad|alguien (real|de verdad))\b"
)
# the bot refused ("não quero falar com robô", "chega de robô", "stop the bot", "no quiero una máquina")
NOT_A_BOT = re.compile(
    r"\b((nao|no|not|dont|don t|do not)( [a-z]+){0,5} (robo|bot|maquina|machine|robot)"
    r"|(robo|bot|maquina) (nao|no)"
    r"|chega de (robo|bot)|basta de (robo|bot|maquina)|(stop|enough|no more)( the| this)? (bot|robot)"
    r"|(sair|salir) do bot|quiero hablar con alguien|i want a human)\b"
)
# words that make "person" words the subject of a question or a complaint, not a request
ABOUT = frozenset(
    "horario horarios hora horas time hours when quando cuando dias dia days weekend fim semana sabado "
    "domingo abre abrem open opens funciona funcionam work works trabajan atienden atendem "
    "atendeu atendio atendi cobrado cobra cobram plano plan plans planes incluido included include free "
    "gratis gratuito pago paid weekends offer oferecem ofrecen price preco "
    "precio custo mobile app "
    "reclamar reclamacao queixa complain complaint quejarme queja elogiar elogio grosseiro rude "
    "add adicionar cadastrar agregar anadir registrar remove remover eliminar quantas quantos many "
    "cuantas cuantos fee taxa tarifa costo cost salario salary vaga vagas job jobs empleo trabajo "
    "fui foi fomos fue was were contratando hiring contratan trabalhar trabajar historico historial history "
    "felicitar parabenizar congratulate thank agradecer priority premium tier feedback center centro "
    "another outra outro otra otro".split()
)
FILLERS = frozenset(
    "por favor favor pf pfv pfvr pls plz please porfa porfavor ja agora now ahora ya aqui ai alo oi ola "
    "hello hi hola um uma un una a an the o el la com con with to quero quiero want i eu yo me "
    "urgente urgent customer service servico servicio cliente atendimento sac xfa xfavor".split()
)
VOCABULARY = tuple(sorted(PEOPLE | ASK | {"atendimento", "humano", "robo", "verdade"}))
KNOWN = frozenset(
    {"pessoal", "agencia", "ajuda", "help", "gente", "human", "falta", "conversas", *ABOUT, *VOCABULARY}
)
POSSESSIVE = frozenset("my meu minha mi mis our nosso nossa nuestro nuestra".split())  # "my manager"
# misspellings are corrected towards these only: other words are too close to everyday ones
# ("there" is one letter from "where", "tienda" from "atienda")
TYPO_TARGETS = tuple(sorted(PEOPLE | {"falar", "hablar", "conversar", "transferir", "speak", "talk"}))
_WORD = re.compile(r"[a-z0-9]+")
WINDOW = 5  # a request word this many words before the person word, or three after it
ABOUT_WINDOW = 3  # a word making it a question about the people this close before, or after
RELATIVE = frozenset({"that", "which", "who", "whose", "cujo", "cuyo"})  # "agents that speak Spanish"


@lru_cache(maxsize=4096)
def _canonical(word: str) -> str:
    """``word``, or the vocabulary word it is a small misspelling of."""
    if word in KNOWN or len(word) < 4 or word.isdigit():
        return word
    budget = 1 if len(word) < 8 else 2
    best, best_distance = word, budget + 1
    for candidate in TYPO_TARGETS:
        if abs(len(candidate) - len(word)) > budget:
            continue
        distance = OSA.distance(word, candidate, score_cutoff=budget)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def _squeeze(word: str) -> str:
    # "humanooo", "atendenteeee": runs of one letter past two are emphasis
    return re.sub(r"(.)\1{2,}", r"\1", word)


def words(text: str) -> list[str]:
    """The message's words, folded, squeezed and corrected."""
    return [_canonical(_squeeze(w)) for w in _WORD.findall(fold(text))]


def _only_people(tokens: list[str]) -> bool:
    return (
        0 < len(tokens) <= 6
        and any(t in PEOPLE for t in tokens)
        and all(t in PEOPLE or t in FILLERS for t in tokens)
    )


def _window_before(tokens: list[str], i: int, size: int = WINDOW) -> list[str]:
    """Up to ``size`` words before ``tokens[i]``, fillers not counted ("connect me with a
    customer service rep")."""
    start, counted = i, 0
    while start > 0 and counted < size:
        start -= 1
        counted += tokens[start] not in FILLERS
    return tokens[start:i]


def asks_for_a_person(text: str) -> bool:
    """Whether ``text`` asks to talk to a person (see the module docstring)."""
    tokens = words(text)
    if not tokens:
        return False
    plain = " ".join(tokens)
    if NOT_A_BOT.search(plain):
        return True
    # "This isn't helping. Human, please.": one sentence of the message is only the request
    if any(_only_people(words(sentence)) for sentence in re.split(r"[.!?,;\n]+", text)):
        return True
    for match in QUALIFIED.finditer(plain):
        around = plain[: match.start()].split()[-WINDOW:] + plain[match.end() :].split()[:3]
        if not any(t in ABOUT for t in around):
            return True
    for i, token in enumerate(tokens):
        if token not in PEOPLE:
            continue
        before = _window_before(tokens, i)
        after = [] if tokens[i + 1 : i + 2] and tokens[i + 1] in RELATIVE else tokens[i + 1 : i + 4]
        if any(t in ABOUT for t in _window_before(tokens, i, ABOUT_WINDOW) + tokens[i + 1 : i + 4]):
            continue  # asks about the people, or complains about one
        if i > 0 and (tokens[i - 1] in POSSESSIVE or tokens[i - 1].isdigit()):
            continue  # "my manager needs...", "a kit for 10 people"
        if any(t in ASK for t in before + after):
            return True
    return False
