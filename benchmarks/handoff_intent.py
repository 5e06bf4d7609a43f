"""Handoff-intent detection: precision and recall of ``engine.intent.asks_for_a_person`` on the
labelled customer messages in ``tests/engine/data/`` (pt-BR, English, Spanish), per set and
language.

The sets, written for atende: ``handoff_intent.jsonl`` (371 messages; the rules were developed
on it), ``handoff_intent_heldout.jsonl`` (224; measured once untouched, then also used to
develop), ``handoff_intent_test.jsonl`` (217; never used to develop: the honest figure).

Run from the project root: ``.venv/bin/python -m benchmarks.handoff_intent [--json OUT]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from atende.engine.intent import asks_for_a_person
from atende.evaluation.scoring import Classification, classification
from benchmarks.common import ROOT, console, read_jsonl, result_table, write_json

DATA = ROOT / "tests" / "engine" / "data"
SETS = ("handoff_intent.jsonl", "handoff_intent_heldout.jsonl", "handoff_intent_test.jsonl")


def measure(path: Path) -> dict[str, Classification]:
    """Per language and "all": the detector's counts over one labelled file."""
    rows = read_jsonl(path)
    by: dict[str, Classification] = {}
    for language in ("pt", "en", "es", "all"):
        chosen = [r for r in rows if language in ("all", r["language"])]
        by[language] = classification((asks_for_a_person(r["text"]), bool(r["human"])) for r in chosen)
    return by


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    rows, payload = [], {}
    for name in SETS:
        figures = measure(DATA / name)
        payload[name] = {
            lang: {"precision": f.precision, "recall": f.recall, "messages": f.total}
            for lang, f in figures.items()
        }
        for lang, f in figures.items():
            rows.append([name, lang, str(f.total), f"{f.precision:.3f}", f"{f.recall:.3f}"])
    console.print(result_table("asks for a person", ["set", "lang", "messages", "precision", "recall"], rows))
    out: dict[str, Any] = {"sets": payload}
    write_json(args.json, out)


if __name__ == "__main__":
    main()
