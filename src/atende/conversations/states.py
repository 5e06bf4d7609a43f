"""The conversation state machine, as pure data and functions.

``bot`` (the AI agent answers) → ``waiting_human`` (handed off, in the queue) → ``human``
(an agent owns it) → ``resolved``. A new customer message reopens a resolved conversation
to ``bot`` (unless the message must not: a rating, a delivery receipt); agents may hand a
conversation back to the bot.

The intake rules (the state a customer's first message opens a conversation in, the state
a customer message moves it to, whether the message gets a bot turn) live here and only
here: the intake function in the database (``atende_receive_message_v6``) hard-codes none
of them, ``conversations.service`` hands it the tables these functions produce, and
``tests/conversations/test_intake_rules.py`` holds the two to one behaviour.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    bot = "bot"
    waiting_human = "waiting_human"
    human = "human"
    resolved = "resolved"


ALLOWED: dict[State, frozenset[State]] = {
    State.bot: frozenset({State.waiting_human, State.human, State.resolved}),
    State.waiting_human: frozenset({State.human, State.bot, State.resolved}),
    State.human: frozenset({State.waiting_human, State.bot, State.resolved}),
    State.resolved: frozenset({State.bot, State.waiting_human, State.human}),
}


class InvalidTransition(ValueError):
    """A state change the state machine does not allow."""


def check_transition(current: State, target: State) -> None:
    """Raise ``InvalidTransition`` unless ``current → target`` is allowed."""
    if target == current:
        raise InvalidTransition(f"conversation is already {current.value}")
    if target not in ALLOWED[current]:
        raise InvalidTransition(f"cannot move a conversation from {current.value} to {target.value}")


# the state of a conversation a customer's first message opens (its transition is "new" → it)
OPENS_IN = State.bot


def state_after_customer_message(current: State, *, reopens_resolved: bool = True) -> State:
    """A customer writing reopens a resolved conversation to the bot, unless the message must
    not reopen it (``reopens_resolved=False``: a rating, a delivery receipt, as the channel's
    policy or the message says); otherwise the state stays."""
    return State.bot if current == State.resolved and reopens_resolved else current


def bot_turn_follows(state: State, *, answers_while_closed: bool) -> bool:
    """Whether a customer message in a conversation in ``state`` (after the message moved
    it) gets a bot turn: the bot owns the conversation, or it waits for a person and the
    company's ``bot_answers_while_closed`` is on *now* (the turn then answers only while the
    team is closed, and only what the knowledge base covers). The turn checks it again
    before it answers (``service.bot_may_answer``): an agent may have taken over meanwhile."""
    return state == State.bot or (state == State.waiting_human and answers_while_closed)
