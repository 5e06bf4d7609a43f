"""Which policy a conversation falls under (the first matching by position; an empty list of
conditions matches any; every non-empty list must match), and durations as people type them."""

from __future__ import annotations

import uuid

import pytest

from atende.sla.policy import Facts, Policy, Target, choose, duration_text, parse_duration

TEAM, OTHER_TEAM, VIP = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def policy(name: str, position: int, **conditions: frozenset) -> Policy:  # type: ignore[type-arg]
    return Policy(uuid.uuid4(), name, position, {Target.first_response: 60}, **conditions)


POLICIES = [
    policy("anyone", 9),
    policy("urgent vip", 0, priorities=frozenset({"urgent"}), label_ids=frozenset({VIP})),
    policy("urgent", 1, priorities=frozenset({"urgent", "high"})),
    policy("whatsapp of the team", 2, channels=frozenset({"whatsapp"}), team_ids=frozenset({TEAM})),
]


@pytest.mark.parametrize(
    ("facts", "chosen"),
    [
        (Facts("urgent", "webchat", None, frozenset({VIP})), "urgent vip"),
        (Facts("urgent", "webchat", None, frozenset()), "urgent"),
        (Facts("high", "api", TEAM), "urgent"),
        (Facts("normal", "whatsapp", TEAM), "whatsapp of the team"),
        (Facts("normal", "whatsapp", OTHER_TEAM), "anyone"),
        (Facts("low", "email", None, frozenset({VIP})), "anyone"),
    ],
)
def test_the_first_matching_policy_by_position_wins(facts: Facts, chosen: str) -> None:
    found = choose(POLICIES, facts)
    assert found is not None and found.name == chosen


def test_no_policy_matching_means_no_targets() -> None:
    assert choose(POLICIES[1:], Facts("normal", "webchat", None)) is None


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [("30m", 1800), ("4h", 14400), ("1h30m", 5400), ("2d", 172800), ("90", 90), (45, 45), (" 1h 5m ", 3900)],
)
def test_durations_read_as_people_type_them(typed: object, seconds: int) -> None:
    assert parse_duration(typed) == seconds
    assert parse_duration(duration_text(seconds)) == seconds


@pytest.mark.parametrize("typed", ["", "quatro horas", "5x", "1h30", "0", -5, True, "400d", None])
def test_what_is_not_a_duration_is_refused(typed: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(typed)
