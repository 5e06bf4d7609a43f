"""The conversation state machine, table-driven."""

import pytest

from atende.conversations.states import (
    ALLOWED,
    InvalidTransition,
    State,
    check_transition,
    state_after_customer_message,
)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.bot, State.waiting_human),
        (State.waiting_human, State.human),
        (State.human, State.resolved),
        (State.resolved, State.bot),
        (State.human, State.bot),
    ],
)
def test_the_main_path_is_allowed(current: State, target: State) -> None:
    check_transition(current, target)


@pytest.mark.parametrize("state", list(State))
def test_staying_in_the_same_state_is_refused(state: State) -> None:
    with pytest.raises(InvalidTransition, match="already"):
        check_transition(state, state)


def test_every_state_can_be_left_and_reached() -> None:
    reachable = set().union(*ALLOWED.values())
    assert reachable == set(State)


def test_a_customer_message_reopens_only_resolved_conversations() -> None:
    assert state_after_customer_message(State.resolved) == State.bot
    for state in (State.bot, State.waiting_human, State.human):
        assert state_after_customer_message(state) == state
