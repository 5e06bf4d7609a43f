"""A conversation's context as it is kept (``knowledge.rules.checked_context``): a page's
path alone, values trimmed, an empty value kept empty (it forgets the key); bad keys, too
many keys and too long values refused, saying what was wrong."""

from __future__ import annotations

import pytest

from atende.knowledge.rules import checked_context, page_path


@pytest.mark.parametrize(
    ("page", "kept"),
    [
        ("https://loja.example/pro/planos?email=a@b.c#top", "/pro/planos"),
        ("/pro/planos?cupom=X", "/pro/planos"),
        ("/pro/planos#precos", "/pro/planos"),
        ("  /pro/  ", "/pro/"),
        ("https://loja.example", ""),
        ("", ""),
        ("/" + "x" * 1999, "/" + "x" * 499),
    ],
)
def test_only_a_pages_path_is_kept(page: str, kept: str) -> None:
    assert page_path(page) == kept


def test_values_are_trimmed_and_an_empty_one_is_kept_to_forget_its_key() -> None:
    given = {"page": "https://x.example/a?b=c", "product": "  Plano   Pro ", "region": "", "plan_2": " gold"}
    assert checked_context(given, channel=False) == {
        "page": "/a",
        "product": "Plano Pro",
        "region": "",
        "plan_2": "gold",
    }
    assert checked_context({"channel": "whatsapp"}, channel=True) == {"channel": "whatsapp"}


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"Region": "south"}, "lower-case letters"),
        ({"região": "sul"}, "lower-case letters"),
        ({"2nd": "x"}, "lower-case letters"),
        ({"channel": "whatsapp"}, "the one it came through"),
        ({f"k{i}": "v" for i in range(21)}, "at most 20"),
        ({"region": "x" * 501}, "at most 500"),
        ({"page": "/" + "x" * 2000}, "at most 2000"),
    ],
)
def test_a_bad_context_is_refused_saying_what_was_wrong(given: dict[str, str], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        checked_context(given, channel=False)
