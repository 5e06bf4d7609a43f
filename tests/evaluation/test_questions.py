"""``atende eval-questions``: messages asked whole and split into their questions, on a tiny
set of e-mails written for this test (each asks two things its gold document answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atende.evaluation.questions import measure
from atende.runtime import Runtime
from tests.evaluation.test_eval import TOPICS, write_set
from tests.test_cli import run

EMAILS = [
    "Hello team,\nI am planning a gift for my mother. How long does delivery to São Paulo take? "
    "Where do the orders ship from?\nThanks,\nPaula",
    "Hi,\nI want to buy two blenders for my restaurant. Do you accept Pix? "
    "Can card payments be split into instalments?\nRegards,\nTom",
    "Good morning. My blender stopped working yesterday. How long is the blender warranty? "
    "Where are repairs done?\nBest,\nAna",
    "Hello! I will visit you on Saturday with my kids. When does the flagship store open? "
    "Is parking free for customers?\nCheers,\nLeo",
]


@pytest.fixture
def emails(tmp_path: Path) -> Path:
    folder = tmp_path / "support"
    passages = [
        {"passage_id": f"en-{i:02d}", "doc_id": f"en-{i:02d}", "title": title, "text": text}
        for i, (title, text) in enumerate(TOPICS["en"])
    ]
    questions = [
        {"question_id": f"q{i}", "question": text, "passage_id": f"en-{i:02d}", "doc_id": f"en-{i:02d}"}
        for i, text in enumerate(EMAILS)
    ]
    write_set(folder, "en", passages, questions)
    return folder


async def test_split_messages_are_answered_citing_gold_where_whole_ones_are_handed_off(
    runtime: Runtime, emails: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what splitting does alone: the re-ranker's answer gate answers some whole messages too
    monkeypatch.setattr(runtime.settings, "rerank_answer_threshold", None)
    result = await measure(runtime, emails, "en")
    assert result["several_questions_found"] == 1.0
    whole, split = result["results"]["whole"], result["results"]["split"]
    assert split["all"]["cited_gold"] == 1.0
    assert split["all"]["cited_gold"] > whole["all"]["cited_gold"]
    # half the documents left out: the messages about them get nothing, the others gold
    assert split["half_left_out"]["unanswerable"]["handed_off_wholly"] == 1.0
    assert split["half_left_out"]["answerable"]["cited_gold"] == 1.0
    assert result["split_ms_several"]["p95"] >= 0


def test_the_cli_prints_the_table_and_writes_json(db_url: str, emails: Path, tmp_path: Path) -> None:
    out = tmp_path / "questions.json"
    done = run(db_url, "eval-questions", str(emails), "--lang", "en", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "Messages split into their questions" in done.stdout and "split" in done.stdout
    assert set(json.loads(out.read_text())["results"]) == {"whole", "split"}
    missing = run(db_url, "eval-questions", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
