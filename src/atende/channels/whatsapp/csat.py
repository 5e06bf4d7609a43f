"""The WhatsApp satisfaction survey: how it goes out, and how its answer is recognised.

Inside the 24-hour customer-service window the survey (``meta["csat"]``, ``atende.feedback``)
is an interactive message of three reply buttons (WhatsApp allows three): worst, middle and
best, scored 1, 3 and 5. Outside it, the company's approved template (``meta["csat"]
["template"]``), whose quick-reply buttons, worst first, get the scores spread over 1-5 (two
buttons: 1 and 5; five: 1 to 5). Each button carries ``csat:<survey id>:<score>``, which comes
back as the reply's id (a button reply) or payload (a template's quick reply): ``answer_of``
reads it, and the channel hands such a message in as a survey answer, which never reopens the
conversation nor reaches the bot.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from atende.engine.messages import phrase

ANSWER_META = "csat_answer"  # a customer message's: the survey answer it is
_ANSWER = re.compile(r"^csat:([0-9a-f]{32}):([1-5])$")
BUTTON_SCORES = (1, 3, 5)
TITLE_MAX = 20  # Meta's limit on a reply button's title


def scores_for(buttons: int) -> list[int]:
    """The scores of a template's ``buttons`` quick replies, worst first, spread over 1-5."""
    if buttons <= 1:
        return [5]
    return [round(1 + 4 * i / (buttons - 1)) for i in range(buttons)]


def payload(survey_id: str, score: int) -> str:
    return f"csat:{uuid.UUID(survey_id).hex}:{score}"


def survey_body(to: str, text: str, survey: Mapping[str, Any]) -> dict[str, Any]:
    """The Graph API body of the survey: reply buttons, or the template outside the window."""
    survey_id = str(survey["survey_id"])
    template = survey.get("template")
    if isinstance(template, Mapping):
        scores = scores_for(int(template.get("buttons") or len(BUTTON_SCORES)))
        components = [
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": payload(survey_id, score)}],
            }
            for index, score in enumerate(scores)
        ]
        return {
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": str(template.get("name")),
                "language": {"code": str(template.get("language"))},
                "components": components,
            },
        }
    language = str(survey.get("language") or "en")
    buttons = [
        {
            "type": "reply",
            "reply": {
                "id": payload(survey_id, score),
                "title": phrase(f"csat:score:{score}", language)[:TITLE_MAX],
            },
        }
        for score in BUTTON_SCORES
    ]
    return {
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": {"type": "button", "body": {"text": text[:1024]}, "action": {"buttons": buttons}},
    }


def answer_of(meta: Mapping[str, Any]) -> tuple[uuid.UUID, int] | None:
    """The survey and score a button's reply names, if it is a survey's."""
    choice = meta.get("choice")
    if not isinstance(choice, Mapping):
        return None
    found = _ANSWER.match(str(choice.get("id") or choice.get("payload") or ""))
    if found is None:
        return None
    return uuid.UUID(hex=found.group(1)), int(found.group(2))
