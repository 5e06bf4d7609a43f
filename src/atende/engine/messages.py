"""What the bot says in its own words, in each language it speaks, and when the team is back
("segunda-feira às 08:00") in the customer's language and the company's timezone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

from atende.engine.handoff import Routing

PHRASES: dict[str, dict[str, str]] = {
    # why the bot hands off (the first sentence of a handoff reply) ...
    "lead:evidence": {
        "pt": "Não encontrei essa informação na nossa base de conhecimento.",
        "en": "I couldn't find that in our knowledge base.",
        "es": "No encontré esa información en nuestra base de conocimiento.",
    },
    # a message partly answered: which of its questions a person will answer ({questions})
    "lead:partial": {
        "pt": "Sobre {questions}, não encontrei a resposta na nossa base de conhecimento.",
        "en": "About {questions}, I couldn't find the answer in our knowledge base.",
        "es": "Sobre {questions}, no encontré la respuesta en nuestra base de conocimiento.",
    },
    "lead:requested": {"pt": "Claro!", "en": "Of course!", "es": "¡Claro!"},
    "lead:rule": {
        "pt": "Esse assunto é tratado diretamente pela nossa equipe.",
        "en": "This is something our team handles directly.",
        "es": "Este tema lo atiende directamente nuestro equipo.",
    },
    "lead:repeat": {
        "pt": "Parece que minhas respostas não resolveram sua dúvida.",
        "en": "It seems my answers haven't solved your question.",
        "es": "Parece que mis respuestas no resolvieron tu duda.",
    },
    "lead:failure": {
        "pt": "Tive um problema para responder sua mensagem.",
        "en": "I had a problem answering your message.",
        "es": "Tuve un problema para responder tu mensaje.",
    },
    # ... and what happens next: someone answers soon, or the team is closed, or nobody is online
    "next:open": {
        "pt": "Vou encaminhar sua mensagem para uma pessoa da nossa equipe, que vai responder em breve.",
        "en": "I'm passing your message to a person on our team, who will reply soon.",
        "es": "Voy a pasar tu mensaje a una persona de nuestro equipo, que te responderá pronto.",
    },
    "next:closed": {
        "pt": "Nossa equipe está fora do horário de atendimento agora e volta {when}. Sua mensagem "
        "fica guardada e vamos responder por aqui.",
        "en": "Our team is outside its working hours right now and will be back {when}. Your message "
        "is kept and we will reply here.",
        "es": "Nuestro equipo está fuera de su horario de atención ahora y vuelve {when}. Tu mensaje "
        "queda guardado y te responderemos por aquí.",
    },
    "next:closed_indefinitely": {
        "pt": "Nossa equipe não está atendendo agora. Sua mensagem fica guardada e vamos responder por aqui.",
        "en": "Our team is not working right now. Your message is kept and we will reply here.",
        "es": "Nuestro equipo no está atendiendo ahora. Tu mensaje queda guardado y te responderemos "
        "por aquí.",
    },
    "next:nobody": {
        "pt": "No momento não há ninguém da equipe disponível. Sua mensagem fica guardada e uma "
        "pessoa vai responder por aqui assim que possível.",
        "en": "Nobody on our team is available right now. Your message is kept and a person will "
        "reply here as soon as possible.",
        "es": "En este momento no hay nadie del equipo disponible. Tu mensaje queda guardado y una "
        "persona te responderá por aquí lo antes posible.",
    },
    "next:bot_assists": {
        "pt": "Enquanto isso, posso continuar respondendo dúvidas sobre o que está na nossa base de "
        "conhecimento.",
        "en": "Meanwhile, I can keep answering questions our help center covers.",
        "es": "Mientras tanto, puedo seguir respondiendo preguntas que cubre nuestro centro de ayuda.",
    },
    # a message that asks several questions: each answer says which one it answers
    "about": {"pt": "Sobre “{question}”:", "en": "About “{question}”:", "es": "Sobre “{question}”:"},
    "and": {"pt": "e", "en": "and", "es": "y"},
    "greeting": {
        "pt": "Olá! Como posso ajudar?",
        "en": "Hello! How can I help you?",
        "es": "¡Hola! ¿En qué puedo ayudarte?",
    },
    "thanks": {
        "pt": "Por nada! Se precisar de mais alguma coisa, é só escrever.",
        "en": "You're welcome! If you need anything else, just write.",
        "es": "¡De nada! Si necesitas algo más, escríbeme.",
    },
    # before a passage quoted in another language than the customer's (``{language}``: its name)
    "found_in": {
        "pt": "Encontrei esta resposta em {language}:",
        "en": "I found this answer in {language}:",
        "es": "Encontré esta respuesta en {language}:",
    },
}
# each language's name, in each language: LANGUAGE_NAMES[customer's][passage's]
LANGUAGE_NAMES: dict[str, dict[str, str]] = {
    "pt": {"pt": "português", "en": "inglês", "es": "espanhol"},
    "en": {"pt": "Portuguese", "en": "English", "es": "Spanish"},
    "es": {"pt": "portugués", "en": "inglés", "es": "español"},
}


# a satisfaction survey (atende.feedback): the scores' words, worst first, and what the
# e-mail survey and its rating page say around them
PHRASES.update(
    {
        "csat:score:1": {"pt": "Muito ruim", "en": "Very poor", "es": "Muy mala"},
        "csat:score:2": {"pt": "Ruim", "en": "Poor", "es": "Mala"},
        "csat:score:3": {"pt": "Regular", "en": "Fair", "es": "Regular"},
        "csat:score:4": {"pt": "Bom", "en": "Good", "es": "Buena"},
        "csat:score:5": {"pt": "Excelente", "en": "Excellent", "es": "Excelente"},
        "csat:email_choose": {
            "pt": "Clique na sua nota (um clique basta):",
            "en": "Click your score (one click is enough):",
            "es": "Haz clic en tu nota (basta un clic):",
        },
        "csat:thanks": {
            "pt": "Obrigado pela sua avaliação!",
            "en": "Thank you for your rating!",
            "es": "¡Gracias por tu calificación!",
        },
        "csat:ask_comment": {
            "pt": "Obrigado pela sua avaliação! Se quiser, conte-nos em uma mensagem o que achou (opcional).",
            "en": "Thank you for your rating! If you like, tell us more in one message (optional).",
            "es": "¡Gracias por tu calificación! Si quieres, cuéntanos más en un mensaje (opcional).",
        },
        "csat:rated": {
            "pt": "Você deu nota {score} de 5 ({label}).",
            "en": "You gave a score of {score} out of 5 ({label}).",
            "es": "Diste una nota de {score} de 5 ({label}).",
        },
        "csat:chosen": {
            "pt": "Você escolheu a nota {score} de 5 ({label}).",
            "en": "You chose a score of {score} out of 5 ({label}).",
            "es": "Elegiste la nota {score} de 5 ({label}).",
        },
        "csat:confirm": {"pt": "Enviar minha nota", "en": "Send my rating", "es": "Enviar mi nota"},
        "csat:change": {
            "pt": "Você pode mudar a nota até {until} clicando em outra nota no e-mail.",
            "en": "You can change it until {until} by clicking another score in the e-mail.",
            "es": "Puedes cambiarla hasta el {until} haciendo clic en otra nota del correo.",
        },
        "csat:comment": {
            "pt": "Quer contar mais? (opcional)",
            "en": "Would you like to tell us more? (optional)",
            "es": "¿Quieres contarnos más? (opcional)",
        },
        "csat:send_comment": {"pt": "Enviar comentário", "en": "Send comment", "es": "Enviar comentario"},
        "csat:commented": {
            "pt": "Obrigado pelo comentário!",
            "en": "Thank you for your comment!",
            "es": "¡Gracias por tu comentario!",
        },
        "csat:bad_link": {
            "pt": "Este link de avaliação não é válido. Confira se ele foi copiado inteiro do e-mail.",
            "en": "This rating link is not valid. Check that it was copied whole from the e-mail.",
            "es": "Este enlace de calificación no es válido. Comprueba que se copió entero del correo.",
        },
        "csat:expired_link": {
            "pt": "Este link de avaliação expirou: a pesquisa já foi encerrada.",
            "en": "This rating link has expired: the survey has closed.",
            "es": "Este enlace de calificación caducó: la encuesta ya se cerró.",
        },
        "csat:used_link": {
            "pt": "Este link já foi usado: cada link vale uma vez. Sua avaliação anterior continua valendo.",
            "en": "This link was used already: each link works once. Your earlier rating stands.",
            "es": "Este enlace ya se usó: cada enlace vale una vez. Tu calificación anterior sigue valiendo.",
        },
        "csat:closed": {
            "pt": "Esta pesquisa já foi encerrada: a avaliação não pode mais ser dada ou mudada.",
            "en": "This survey has closed: its rating can no longer be given or changed.",
            "es": "Esta encuesta ya se cerró: la calificación ya no se puede dar ni cambiar.",
        },
        "csat:title": {"pt": "Avaliação do atendimento", "en": "Rate our help", "es": "Califica la atención"},
    }
)


# "handoff": a weak-evidence handoff while the team is open (what earlier versions said)
PHRASES["handoff"] = {
    lang: f"{PHRASES['lead:evidence'][lang]} {PHRASES['next:open'][lang]}" for lang in ("pt", "en", "es")
}
LOCALES = {"pt": "pt_BR", "en": "en_US", "es": "es_ES"}


def phrase(key: str, language: str) -> str:
    options = PHRASES[key]
    return options.get(language, options["en"])


def found_in(quoted: str, language: str) -> str:
    """The notice before a passage quoted in ``quoted``'s language, in the customer's
    ``language``: "Encontrei esta resposta em inglês:"."""
    names = LANGUAGE_NAMES.get(language, LANGUAGE_NAMES["en"])
    return phrase("found_in", language).format(language=names.get(quoted, quoted))


def when_back(now: datetime, opens: datetime, timezone: str, language: str) -> str:
    """When the team is back, said as a person would in ``language``, in the company's time:
    "hoje às 14:00", "tomorrow at 8:00 AM", "el lunes a las 08:00", and the date when it is
    more than a week away ("segunda-feira, 5 de janeiro, às 08:00")."""
    zone = ZoneInfo(timezone)
    local_now, local = now.astimezone(zone), opens.astimezone(zone)
    locale = LOCALES.get(language, "en_US")
    days = (local.date() - local_now.date()).days
    clock = format_time(local, "HH:mm" if language in ("pt", "es") else "h:mm a", locale=locale)
    clock = clock.replace("\u202f", " ")
    weekday = format_date(local, "EEEE", locale=locale)
    date_words = format_date(local, "d 'de' MMMM", locale=locale)  # pt, es: "5 de janeiro"
    if language == "pt":
        day = {0: "hoje", 1: "amanhã"}.get(days) or weekday
        if days > 6:
            day = f"{weekday}, {date_words},"
        return f"{day} às {clock}"
    if language == "es":
        article = "a la" if local.hour == 1 else "a las"
        day = {0: "hoy", 1: "mañana"}.get(days) or f"el {weekday}"
        if days > 6:
            day = f"el {weekday} {date_words}"
        return f"{day} {article} {clock}"
    day = {0: "today", 1: "tomorrow"}.get(days) or f"on {weekday}"
    if days > 6:
        day = f"on {weekday}, {format_date(local, 'MMMM d', locale=locale)}"
    return f"{day} at {clock}"


QUOTED_CHARS = 120  # of a customer's question named in a reply


def _quoted(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= QUOTED_CHARS else text[: QUOTED_CHARS - 1].rsplit(" ", 1)[0] + "…"


def asked_about(question: str, language: str) -> str:
    """The words an answer to one of several questions opens with: "Sobre “Qual o prazo?”:"."""
    return phrase("about", language).format(question=_quoted(question))


def handoff_text(
    lead: str, language: str, routing: Routing, now: datetime, *, questions: Sequence[str] = ()
) -> str:
    """The reply that hands a conversation to the team: why (``lead``: evidence, requested,
    rule, repeat, failure; partial: ``questions`` were left unanswered), then what happens
    next given the hours and who is online."""
    named = [f"“{_quoted(q)}”" for q in questions]
    joined = (
        ", ".join(named[:-1]) + f" {phrase('and', language)} {named[-1]}"
        if len(named) > 1
        else "".join(named)
    )
    parts = [phrase(f"lead:{lead}", language).format(questions=joined)]
    if routing.is_open and routing.staffed:
        parts.append(phrase("next:open", language))
    elif not routing.is_open and routing.opens is not None:
        when = when_back(now, routing.opens, routing.timezone, language)
        parts.append(phrase("next:closed", language).format(when=when))
    elif not routing.is_open:
        parts.append(phrase("next:closed_indefinitely", language))
    else:
        parts.append(phrase("next:nobody", language))
    if routing.bot_assists:  # only ever set while closed
        parts.append(phrase("next:bot_assists", language))
    return " ".join(parts)
