"""The conversation state machine, as pure data and functions.

``bot`` (the AI agent answers) → ``waiting_human`` (handed off, in the queue) → ``human``
(an agent owns it) → ``resolved``. A new customer message reopens a resolved conversation
to ``bot``; agents may hand a conversation back to the bot.
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


def state_after_customer_message(current: State) -> State:
    """A customer writing reopens a resolved conversation; otherwise the state stays."""
    return State.bot if current == State.resolved else current
