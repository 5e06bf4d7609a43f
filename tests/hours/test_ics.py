"""Closed dates imported from iCalendar files: all-day events close days, timed ones are skipped."""

from __future__ import annotations

import pickle
import time
from datetime import date

import pytest

from atende.hours import InvalidSchedule
from atende.hours.ics import Imported, closures_from_ics

FIRST, LAST = date(2026, 1, 1), date(2028, 12, 31)


def event(uid: str, *lines: str) -> str:
    return "".join(
        f"{line}\r\n"
        for line in ("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *lines, "END:VEVENT")
    )


def calendar(*events: str) -> bytes:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//atende tests//EN\r\n"
    return (head + "".join(events) + "END:VCALENDAR\r\n").encode()


def test_all_day_event_closes_its_date() -> None:
    data = calendar(
        event(
            "a", "DTSTART;VALUE=DATE:20270210", "DTEND;VALUE=DATE:20270211", "SUMMARY:Quarta-feira de Cinzas"
        )
    )
    assert closures_from_ics(data, FIRST, LAST) == Imported({date(2027, 2, 10): "Quarta-feira de Cinzas"}, [])


def test_all_day_event_without_dtend_closes_one_day() -> None:
    data = calendar(event("a", "DTSTART;VALUE=DATE:20270210", "SUMMARY:Inventário"))
    assert closures_from_ics(data, FIRST, LAST).closed == {date(2027, 2, 10): "Inventário"}


def test_multi_day_all_day_event_closes_each_date_up_to_its_exclusive_end() -> None:
    data = calendar(
        event(
            "a", "DTSTART;VALUE=DATE:20271224", "DTEND;VALUE=DATE:20271227", "SUMMARY:Recesso de fim de ano"
        )
    )
    assert closures_from_ics(data, FIRST, LAST).closed == {
        date(2027, 12, 24): "Recesso de fim de ano",
        date(2027, 12, 25): "Recesso de fim de ano",
        date(2027, 12, 26): "Recesso de fim de ano",
    }


def test_multi_day_event_given_by_duration_closes_each_date() -> None:
    data = calendar(event("a", "DTSTART;VALUE=DATE:20270208", "DURATION:P2D", "SUMMARY:Carnaval"))
    assert closures_from_ics(data, FIRST, LAST).closed == {
        date(2027, 2, 8): "Carnaval",
        date(2027, 2, 9): "Carnaval",
    }


def test_multi_day_event_across_the_period_is_cut_to_the_period() -> None:
    data = calendar(event("a", "DTSTART;VALUE=DATE:20251230", "DTEND;VALUE=DATE:20260103", "SUMMARY:Férias"))
    assert sorted(closures_from_ics(data, date(2026, 1, 1), date(2026, 1, 1)).closed) == [date(2026, 1, 1)]
    assert sorted(closures_from_ics(data, date(2025, 12, 31), date(2026, 1, 10)).closed) == [
        date(2025, 12, 31),
        date(2026, 1, 1),
        date(2026, 1, 2),
    ]


def test_yearly_recurring_holiday_is_expanded_over_the_period() -> None:
    data = calendar(
        event(
            "zumbi",
            "DTSTART;VALUE=DATE:20201120",
            "DTEND;VALUE=DATE:20201121",
            "RRULE:FREQ=YEARLY",
            "SUMMARY:Consciência Negra",
        )
    )
    imported = closures_from_ics(data, FIRST, LAST)
    assert imported.closed == {date(year, 11, 20): "Consciência Negra" for year in (2026, 2027, 2028)}
    assert imported.skipped == []


def test_yearly_recurring_holiday_respects_exdate_and_count() -> None:
    data = calendar(
        event(
            "natal",
            "DTSTART;VALUE=DATE:20261225",
            "DTEND;VALUE=DATE:20261226",
            "RRULE:FREQ=YEARLY;COUNT=10",
            "EXDATE;VALUE=DATE:20271225",
            "SUMMARY:Natal",
        ),
        event("ano", "DTSTART;VALUE=DATE:20240101", "RRULE:FREQ=YEARLY;COUNT=3", "SUMMARY:Ano Novo"),
    )
    assert closures_from_ics(data, FIRST, LAST).closed == {
        date(2026, 1, 1): "Ano Novo",
        date(2026, 12, 25): "Natal",
        date(2028, 12, 25): "Natal",
    }


def test_event_outside_the_period_closes_nothing() -> None:
    data = calendar(event("a", "DTSTART;VALUE=DATE:20300101", "SUMMARY:Futuro"))
    assert closures_from_ics(data, FIRST, LAST) == Imported({}, [])


def test_timed_event_is_reported_as_skipped_not_closed() -> None:
    data = calendar(
        event("t", "DTSTART:20270210T140000Z", "DTEND:20270210T150000Z", "SUMMARY:Reunião geral"),
        event("z", "DTSTART;TZID=America/Sao_Paulo:20270211T090000", "DURATION:PT2H", "SUMMARY:Treinamento"),
        event("a", "DTSTART;VALUE=DATE:20270212", "SUMMARY:Ponte"),
    )
    imported = closures_from_ics(data, FIRST, LAST)
    assert imported.closed == {date(2027, 2, 12): "Ponte"}
    assert sorted(imported.skipped) == ["Reunião geral", "Treinamento"]


def test_event_without_summary_is_named_closed() -> None:
    data = calendar(
        event("a", "DTSTART;VALUE=DATE:20270210"), event("b", "DTSTART;VALUE=DATE:20270211", "SUMMARY:   ")
    )
    assert closures_from_ics(data, FIRST, LAST).closed == {
        date(2027, 2, 10): "closed",
        date(2027, 2, 11): "closed",
    }


def test_first_event_of_a_date_names_it() -> None:
    data = calendar(
        event("a", "DTSTART;VALUE=DATE:20271224", "DTEND;VALUE=DATE:20271226", "SUMMARY:Recesso"),
        event("b", "DTSTART;VALUE=DATE:20271225", "SUMMARY:Natal"),
    )
    closed = closures_from_ics(data, FIRST, LAST).closed
    assert set(closed) == {date(2027, 12, 24), date(2027, 12, 25)}
    assert closed[date(2027, 12, 25)] in {"Recesso", "Natal"}


def test_empty_calendar_closes_nothing() -> None:
    assert closures_from_ics(calendar(), FIRST, LAST) == Imported({}, [])


MALFORMED = [
    pytest.param(b"\x00\xff\xfe\x89PNG\r\n\x1a\n garbage", id="garbage-bytes"),
    pytest.param(b"", id="empty"),
    pytest.param(b"hello, world", id="plain-text"),
    pytest.param(
        b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270210\r\nEND:VEVENT\r\n", id="event-without-calendar"
    ),
    pytest.param(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", id="truncated-calendar"),
    pytest.param(
        calendar(event("b", "DTSTART;VALUE=DATE:2027-99-99", "SUMMARY:x")), id="broken-dtstart-date"
    ),
    pytest.param(calendar(event("b", "DTSTART:amanhã", "SUMMARY:x")), id="broken-dtstart-word"),
    pytest.param(calendar(event("b", "SUMMARY:no start")), id="missing-dtstart"),
]


@pytest.mark.parametrize("data", MALFORMED)
def test_malformed_file_is_refused_as_invalid_ics(data: bytes) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        closures_from_ics(data, FIRST, LAST)
    assert raised.value.field == "ics"
    assert "iCalendar" in raised.value.message


def test_malformed_file_is_refused_naming_the_callers_field() -> None:
    with pytest.raises(InvalidSchedule) as raised:
        closures_from_ics(b"not a calendar", FIRST, LAST, where="imports[2].file")
    assert raised.value.field == "imports[2].file"


# a hostile calendar: few bytes, many occurrences


# the tester's 183-byte file: 150 000 occurrences, one a minute from 4 March 2026
FLOOD = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:flood\r\n"
    b"DTSTART:20260304T000000Z\r\nRRULE:FREQ=MINUTELY;COUNT=150000\r\n"
    b"SUMMARY:Daily standup meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_a_rule_repeating_every_minute_is_refused_at_the_cap_without_being_expanded() -> None:
    assert len(FLOOD) == 183
    started = time.monotonic()
    with pytest.raises(InvalidSchedule) as raised:
        closures_from_ics(FLOOD, FIRST, LAST)
    assert time.monotonic() - started < 1.0  # counted lazily: 5001 steps, not 150 000 events
    assert raised.value.field == "ics"
    assert "more than 5000 events between 2026-01-01 and 2028-12-31" in raised.value.message
    assert "atende imports at most 5000" in raised.value.message


def test_the_event_cap_counts_occurrences_across_the_whole_file() -> None:
    daily = event("d", "DTSTART;VALUE=DATE:20270101", "RRULE:FREQ=DAILY;COUNT=6", "SUMMARY:Recesso")
    single = event("s", "DTSTART;VALUE=DATE:20270301", "SUMMARY:Balanço")
    assert len(closures_from_ics(calendar(daily, single), FIRST, LAST, max_events=7).closed) == 7
    with pytest.raises(InvalidSchedule, match="more than 6 events"):
        closures_from_ics(calendar(daily, single), FIRST, LAST, max_events=6)
    with pytest.raises(InvalidSchedule, match="more than 5 events"):  # the rule alone, before expanding
        closures_from_ics(calendar(single, daily), FIRST, LAST, max_events=5)


def test_occurrences_outside_the_period_do_not_count_towards_the_cap() -> None:
    data = calendar(event("w", "DTSTART;VALUE=DATE:20200106", "RRULE:FREQ=WEEKLY", "SUMMARY:Folga"))
    assert len(closures_from_ics(data, date(2026, 1, 1), date(2026, 1, 31), max_events=5).closed) == 4


def test_a_rule_walked_too_far_before_the_period_ends_is_refused_naming_its_event() -> None:
    data = calendar(event("since-1900", "DTSTART;VALUE=DATE:19000101", "RRULE:FREQ=DAILY", "SUMMARY:Aberto"))
    assert len(closures_from_ics(data, FIRST, LAST).closed) == (LAST - FIRST).days + 1
    with pytest.raises(InvalidSchedule) as raised:
        closures_from_ics(data, FIRST, LAST, max_recurrences=10_000)
    assert "repeats the event with UID 'since-1900' more than 10000 times" in raised.value.message


def test_reading_stops_at_the_time_budget() -> None:
    data = calendar(*(event(f"e{i}", f"DTSTART;VALUE=DATE:2027{1 + i % 12:02}01") for i in range(3000)))
    started = time.monotonic()
    with pytest.raises(InvalidSchedule, match=r"takes more than 0\.05 s to read"):
        closures_from_ics(data, FIRST, LAST, seconds=0.05)
    assert time.monotonic() - started < 5.0  # the parse itself is not interrupted; the rest is


def test_an_import_error_survives_the_trip_back_from_the_worker_process() -> None:
    error = pickle.loads(pickle.dumps(InvalidSchedule("ics", "the calendar has more than 5000 events")))
    assert (error.field, error.message) == ("ics", "the calendar has more than 5000 events")
