"""How the inbox names things to a person: states, channels, delivery statuses, languages,
and the reasons a conversation was handed to people, in plain words.

The services keep their values and reasons in English for the API and the logs
(``"handoff rule 'procon' matched (closed)"``); a page says them in the reader's language.
Every text here is marked for extraction (``N_``) and translated where it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from atende.dashboard.i18n import N_

STATE_NAMES = {
    "bot": N_("Bot"),
    "waiting_human": N_("Waiting for a person"),
    "human": N_("With an agent"),
    "resolved": N_("Resolved"),
}
CHANNEL_NAMES = {
    "api": N_("API"),
    "webchat": N_("Web chat"),
    "email": N_("E-mail"),
    "whatsapp": N_("WhatsApp"),
    "telegram": N_("Telegram"),
}
DELIVERY_NAMES = {
    "queued": N_("Queued"),
    "sent": N_("Sent"),
    "delivered": N_("Delivered"),
    "read": N_("Read"),
    "failed": N_("Failed"),
}
AUTHOR_NAMES = {
    "customer": N_("Customer"),
    "bot": N_("Bot"),
    "agent": N_("Agent"),
    "system": N_("System"),
    "note": N_("Private note"),
}
LANGUAGE_NAMES = {"pt": N_("Portuguese"), "en": N_("English"), "es": N_("Spanish")}
AVAILABILITY_NAMES = {"online": N_("Online"), "away": N_("Away"), "offline": N_("Offline")}
VIEW_NAMES = {
    "mine": N_("Mine"),
    "unassigned": N_("Unassigned"),
    "my_teams": N_("My teams"),
    "all": N_("All"),
}

_RULE = re.compile(r"handoff rule '(?P<rule>.*)' matched")
_PARTLY = re.compile(r"partly answered (?P<answered>\d+) of (?P<asked>\d+) questions\b.*")
_FAILED = re.compile(r"the bot could not answer: (?P<error>.*)")


def handoff_reason(reason: str | None, _: Callable[[str], str]) -> str:
    """Why the conversation went to people, from the reason its state change recorded."""
    raw = (reason or "").strip()
    closed = raw.endswith(" (closed)")
    nobody = raw.endswith(" (nobody online)")
    core = raw.removesuffix(" (closed)").removesuffix(" (nobody online)")
    if core == "the customer asked for a person":
        said = _("The customer asked to talk to a person.")
    elif core == "the customer repeated a question the bot had answered":
        said = _("The customer asked again something the bot had answered: its answer did not help.")
    elif (rule := _RULE.fullmatch(core)) is not None:
        said = _("The handoff rule “%(rule)s” matched the customer's message.") % {"rule": rule["rule"]}
    elif (partly := _PARTLY.fullmatch(core)) is not None:
        said = _(
            "The bot answered %(answered)s of the %(asked)s questions in the customer's message; a person "
            "answers the rest."
        ) % {"answered": partly["answered"], "asked": partly["asked"]}
    elif (failed := _FAILED.fullmatch(core)) is not None:
        said = _("The bot could not answer because of an error (%(error)s).") % {"error": failed["error"]}
    elif "weak evidence" in core or "found no answer" in core or core in ("no answer", ""):
        said = _("The knowledge base has no good answer to the customer's question.")
    elif core == "the customer left a message for the team":
        said = _("The customer left a message with the web chat's contact form.")
    elif core.startswith("moved to team"):
        said = _("An agent gave the conversation to a team.")
    else:
        said = _("Reason given: %(reason)s") % {"reason": core}
    if closed:
        said += " " + _("The team was closed: it waits as a ticket for the team to open.")
    elif nobody:
        said += " " + _("Nobody was online: it waits as a ticket for someone to come online.")
    return said


_SMALL_TALK = re.compile(r"small talk: (?P<kind>\w+)")
_FROM_DOCUMENT = re.compile(r"answered from '(?P<title>.*)' \(coverage (?P<coverage>[\d.]+)\)")
_FROM_RERANKER = re.compile(r"answered from '(?P<title>.*)' \(re-ranker p (?P<p>[\d.]+)\)")
_ACROSS = re.compile(
    r"answered across languages from '(?P<title>.*)' \((?P<language>\w+); dense (?P<meaning>[\d.]+)\)"
)
_WEAK = re.compile(r"weak evidence: best coverage (?P<coverage>[\d.]+) < threshold (?P<needed>[\d.]+)")
_OFF_TOPIC = re.compile(
    r"off the message's topic: its passage holds (?P<share>[\d.]+) of the questions' terms "
    r"< (?P<needed>[\d.]+) \(.*\)"
)
_LLM_CITING = re.compile(r"answered by the LLM citing passages (?P<passages>[\d, ]+)")
# the LLM answerer's reasons for falling back to the offline one ("<why>; extractive: <its reason>")
_FALLBACK = re.compile(r"(?P<why>[^;]+); (?P<fallback>\w+): (?P<rest>.*)")
SMALL_TALK_NAMES = {
    "greeting": N_("a greeting"),
    "thanks": N_("thanks"),
}


def turn_reason(reason: str | None, _: Callable[[str], str]) -> str:
    """Why the bot answered or handed off one message, from its trace's reason, in plain
    words; a reason it does not know is shown as recorded."""
    raw = (reason or "").strip()
    if (fell := _FALLBACK.fullmatch(raw)) is not None and fell["why"].startswith("the LLM"):
        return f"{_llm_fallback(fell['why'], _)} {turn_reason(fell['rest'], _)}"
    if (small := _SMALL_TALK.fullmatch(raw)) is not None:
        kind = small["kind"]
        said = _(SMALL_TALK_NAMES[kind]) if kind in SMALL_TALK_NAMES else kind
        return _("The message was small talk (%(kind)s): the bot answered in kind.") % {"kind": said}
    if (found := _FROM_DOCUMENT.fullmatch(raw)) is not None:
        return _("The bot answered from “%(title)s”, which covers %(share)s%% of the question's words.") % {
            "title": found["title"],
            "share": round(float(found["coverage"]) * 100),
        }
    if (sure := _FROM_RERANKER.fullmatch(raw)) is not None:
        return _(
            "The bot answered from “%(title)s”: the re-ranker puts the chance that it is the passage "
            "that answers at %(share)s%%."
        ) % {"title": sure["title"], "share": round(float(sure["p"]) * 100)}
    if (across := _ACROSS.fullmatch(raw)) is not None:
        return _(
            "The bot answered from “%(title)s”, a passage in another language (%(language)s) close in "
            "meaning to the question (%(share)s%%), quoted as it is."
        ) % {
            "title": across["title"],
            "language": across["language"],
            "share": round(float(across["meaning"]) * 100),
        }
    if (weak := _WEAK.fullmatch(raw)) is not None:
        return _(
            "The best passage covers only %(share)s%% of the question's words (at least %(needed)s%% "
            "is needed): the knowledge base has no good answer."
        ) % {"share": round(float(weak["coverage"]) * 100), "needed": round(float(weak["needed"]) * 100)}
    if (off := _OFF_TOPIC.fullmatch(raw)) is not None:
        return _(
            "Its best passage holds only %(share)s%% of the words of the message's questions (at least "
            "%(needed)s%% is needed): it is about something else, so a person answers this question."
        ) % {"share": round(float(off["share"]) * 100), "needed": round(float(off["needed"]) * 100)}
    if (cited := _LLM_CITING.fullmatch(raw)) is not None:
        return _("The LLM answered, citing passages %(passages)s.") % {"passages": cited["passages"]}
    if raw == "the LLM found no answer in the passages":
        return _("The LLM found no answer in the passages retrieved.")
    return handoff_reason(raw, _)


def _llm_fallback(why: str, _: Callable[[str], str]) -> str:
    if why == "the LLM circuit is open":
        return _("The LLM was not asked: it failed repeatedly, so its circuit is open.")
    if why.startswith("the LLM failed"):
        return _("The LLM failed (%(error)s).") % {"error": why.removeprefix("the LLM failed").strip(" ()")}
    if why.startswith("the LLM answer"):
        return _("The LLM's answer was refused (%(why)s).") % {
            "why": why.removeprefix("the LLM answer").strip()
        }
    return why


# why a retrieval stage fell back, as ``knowledge.rerank.rerank`` and the hybrid retriever
# record it (the trace's ``fallbacks``)
_OVER_BUDGET = re.compile(r"(?P<reranker>\S+) took longer than its (?P<ms>[\d.]+) ms budget")
_RERANKER_FAILED = re.compile(r"(?P<reranker>\S+) failed: (?P<error>.*)")
_NOT_REORDERED = re.compile(r"(?P<reranker>\S+): it returned .*")
FALLBACK_STAGES = {
    "dense": N_("Dense search"),
    "reranked": N_("Re-ranking"),
    "llm_reranked": N_("Re-ranking by the LLM"),
}


def stage_fallback(stage: str, error: str, _: Callable[[str], str]) -> str:
    """Why one retrieval stage of a turn fell back (its input order stood, or the dense search
    found nothing), in the reader's words; an unknown reason as recorded."""
    name = _(FALLBACK_STAGES[stage]) if stage in FALLBACK_STAGES else stage
    if stage == "dense":
        return _("%(stage)s found nothing: the question could not be embedded (%(error)s).") % {
            "stage": name,
            "error": error,
        }
    if (late := _OVER_BUDGET.fullmatch(error)) is not None:
        return _(
            "%(stage)s kept the order before it: the re-ranker took longer than its %(ms)s ms budget."
        ) % {"stage": name, "ms": late["ms"]}
    if (failed := _RERANKER_FAILED.fullmatch(error)) is not None:
        return _("%(stage)s kept the order before it: the re-ranker failed (%(error)s).") % {
            "stage": name,
            "error": failed["error"],
        }
    if _NOT_REORDERED.fullmatch(error) is not None:
        return _(
            "%(stage)s kept the order before it: the re-ranker's reply was not the passages re-ordered."
        ) % {"stage": name}
    return _("%(stage)s fell back: %(error)s") % {"stage": name, "error": error}


def rule_applied(kind: str, detail: Mapping[str, Any], _: Callable[[str], str]) -> str:
    """One knowledge rule or filter that narrowed a search (``knowledge.rules.Applied``, or
    as a trace keeps it), in the reader's words."""
    if kind == "valid_now":
        return _("Only documents valid now, by their Valid from and Valid until dates.")
    if kind == "windowed_tags":
        return _(
            "Documents tagged %(tags)s only within their dates, and never without a Valid until date."
        ) % {"tags": ", ".join(detail.get("tags", []))}
    if kind == "internal":
        return _("Internal documents left out: a customer never gets them.")
    if kind == "context":
        said = _(
            "Rule %(rule)s: the conversation's %(when)s is “%(given)s”, so only documents whose "
            "%(field)s is “%(value)s”."
        )
        if detail.get("or_unset"):
            said = _(
                "Rule %(rule)s: the conversation's %(when)s is “%(given)s”, so only documents whose "
                "%(field)s is “%(value)s”, or that do not set it."
            )
        return said % {key: detail.get(key, "") for key in ("rule", "when", "given", "field", "value")}
    return _("The filters given with the question.")
