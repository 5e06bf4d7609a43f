"""Tables of an ``atende eval`` result."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def retrieval_table(results: dict[str, Any]) -> Table:
    rules = "; ".join(f"{name}: {result['hit_rule']}" for name, result in results.items())
    table = Table(
        title="Retrieval, top 10 chunks",
        title_justify="left",
        caption=f"a hit is a chunk of the gold passage ({rules})",
        caption_justify="left",
    )
    for column in ("set", "retriever", "n", "R@1", "R@5", "R@10", "MRR@10"):
        table.add_column(column, justify="left" if column in ("set", "retriever") else "right")
    for name, result in results.items():
        for retriever, f in result["retrieval"].items():
            table.add_row(
                name,
                retriever,
                str(f["questions"]),
                f"{f['recall@1']:.3f}",
                f"{f['recall@5']:.3f}",
                f"{f['recall@10']:.3f}",
                f"{f['mrr@10']:.3f}",
            )
    return table


def answers_table(results: dict[str, Any]) -> Table:
    table = Table(
        title="Answers (the bot's whole pipeline)",
        title_justify="left",
        caption="half: every other document left out; ans. = questions it can answer, unans. = the others",
        caption_justify="left",
    )
    columns = (
        "set",
        "answered",
        "cites gold",
        "half: ans. answered",
        "half: ans. cites gold",
        "half: unans. handoff",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, result in results.items():
        half = result.get("half_left_out")
        table.add_row(
            name,
            _pct(result["answers"]["answered"]),
            _pct(result["answers"]["cited_gold"]),
            _pct(half["answered_answerable"]) if half else "—",
            _pct(half["cited_gold_answerable"]) if half else "—",
            _pct(half["handoff_unanswerable"]) if half else "—",
        )
    return table


WAYS = {
    "without_rewrite": "without rewrite",
    "with_rewrite": "with rewrite",
    "original_question_alone": "original question alone",
}


def follow_ups_table(results: dict[str, Any]) -> Table:
    """``atende eval --follow-ups``: per language and kind of second message, each way of asking."""
    table = Table(
        title="Follow-ups (the second message of a conversation)",
        title_justify="left",
        caption="follow_up: a second question made elliptical; topic_switch(_cued): a question about "
        "another article, as written (and opened by the cue); rewritten: the follow-up step changed "
        "the query",
        caption_justify="left",
    )
    for column in ("set", "kind", "asked", "n", "R@1", "R@5", "answered", "cites gold", "rewritten"):
        table.add_column(column, justify="left" if column in ("set", "kind", "asked") else "right")
    for language, result in results.items():
        for kind in ("follow_up", "topic_switch", "topic_switch_cued"):
            for way, label in WAYS.items():
                f = result.get(kind, {}).get(way)
                if not f:
                    continue
                table.add_row(
                    language,
                    kind,
                    label,
                    str(f["questions"]),
                    _pct(f["recall@1"]),
                    _pct(f["recall@5"]),
                    _pct(f["answered"]),
                    _pct(f["cited_gold"]),
                    _pct(f["rewritten"]),
                )
    return table


def latency_table(results: dict[str, Any]) -> Table | None:
    """The learned re-ranker's added time per question, where it ran."""
    rows = [(name, r["rerank_latency"]) for name, r in results.items() if r.get("rerank_latency")]
    if not rows:
        return None
    table = Table(
        title="Re-ranking: added time per question (features + model, ms)",
        title_justify="left",
        caption="measured on this machine under its load at the time",
        caption_justify="left",
    )
    for column in ("set", "calls", "mean", "p50", "p95"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, f in rows:
        table.add_row(
            name, str(f["calls"]), f"{f['mean_ms']:.1f}", f"{f['p50_ms']:.1f}", f"{f['p95_ms']:.1f}"
        )
    return table
