"""What the bot says in its own words, in each language it speaks."""

from __future__ import annotations

PHRASES: dict[str, dict[str, str]] = {
    "handoff": {
        "pt": "Não encontrei essa informação na nossa base de conhecimento. Vou encaminhar sua "
        "mensagem para uma pessoa da nossa equipe, que vai responder em breve.",
        "en": "I couldn't find that in our knowledge base. I'm passing your message to a person "
        "on our team, who will reply soon.",
        "es": "No encontré esa información en nuestra base de conocimiento. Voy a pasar tu "
        "mensaje a una persona de nuestro equipo, que te responderá pronto.",
    },
    "failure": {
        "pt": "Tive um problema para responder sua mensagem. Vou encaminhá-la para uma pessoa da "
        "nossa equipe, que vai responder em breve.",
        "en": "I had a problem answering your message. I'm passing it to a person on our team, "
        "who will reply soon.",
        "es": "Tuve un problema para responder tu mensaje. Voy a pasarlo a una persona de nuestro "
        "equipo, que te responderá pronto.",
    },
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
}


def phrase(key: str, language: str) -> str:
    options = PHRASES[key]
    return options.get(language, options["en"])
