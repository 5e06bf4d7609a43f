"""QA sets for ``atende eval``: one pair of JSONL files per language.

``LANG.passages.jsonl`` holds ``{passage_id, doc_id, title, language, text}`` and
``LANG.questions.jsonl`` holds ``{question_id, language, question, passage_id, doc_id,
answers[]}`` (the format of ``../shared/data/retrieval`` and ``../shared/data/support``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atende.errors import InvalidInput

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text compared the way chunks keep it: lower case, whitespace collapsed."""
    return _SPACE.sub(" ", text).strip().lower()


@dataclass(frozen=True)
class QAPassage:
    passage_id: str
    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class QAQuestion:
    question_id: str
    question: str
    passage_id: str
    doc_id: str
    answers: tuple[str, ...]


@dataclass
class QASet:
    """One language of a QA set, with its passages grouped into documents."""

    language: str
    passages: dict[str, QAPassage]
    questions: list[QAQuestion]
    documents: dict[str, list[QAPassage]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for passage in self.passages.values():
            self.documents.setdefault(passage.doc_id, []).append(passage)

    @property
    def passage_level(self) -> bool:
        """Every document is one passage: a hit is any chunk of the gold document (the
        ``answers`` of such sets only mark the passage, as in ``support/``)."""
        return all(len(passages) == 1 for passages in self.documents.values())

    def document_text(self, doc_id: str) -> str:
        return "\n\n".join(p.text.strip() for p in self.documents[doc_id])

    def document_title(self, doc_id: str) -> str:
        first = self.documents[doc_id][0]
        return first.title.strip() or doc_id


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number} is not JSON: {exc.msg}") from exc
    return rows


def available_languages(directory: Path) -> list[str]:
    return sorted(
        p.name.split(".")[0]
        for p in directory.glob("*.passages.jsonl")
        if (directory / f"{p.name.split('.')[0]}.questions.jsonl").exists()
    )


def load(directory: Path, language: str) -> QASet:
    """Read one language of the set in ``directory``; a missing field is a clear error."""
    passages_path = directory / f"{language}.passages.jsonl"
    questions_path = directory / f"{language}.questions.jsonl"
    for path in (passages_path, questions_path):
        if not path.is_file():
            raise InvalidInput(
                f"{path} does not exist: a QA set has LANG.passages.jsonl and LANG.questions.jsonl"
            )
    try:
        passages = {
            row["passage_id"]: QAPassage(
                row["passage_id"], row["doc_id"], row.get("title") or "", row["text"]
            )
            for row in _read_jsonl(passages_path)
        }
        questions = [
            QAQuestion(
                row["question_id"],
                row["question"],
                row["passage_id"],
                row["doc_id"],
                tuple(a for a in row.get("answers") or () if a.strip()),
            )
            for row in _read_jsonl(questions_path)
        ]
    except KeyError as exc:
        raise InvalidInput(f"a row of the {language} set has no {exc.args[0]!r} field") from exc
    unknown = [q.question_id for q in questions if q.passage_id not in passages]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} {language} questions name a passage that is not in the set: {unknown[:3]}"
        )
    return QASet(language, passages, questions)


def cross_lingual(source: QASet, target: QASet) -> list[QAQuestion]:
    """``source``'s questions asked of ``target``'s passages, where the sets are translations
    with parallel ids (``es-00-p00`` ↔ ``en-00-p00``); questions without a counterpart are left out."""
    prefix_from, prefix_to = f"{source.language}-", f"{target.language}-"
    asked = []
    for q in source.questions:
        passage_id = prefix_to + q.passage_id.removeprefix(prefix_from)
        if q.passage_id.startswith(prefix_from) and passage_id in target.passages:
            gold = target.passages[passage_id]
            asked.append(QAQuestion(q.question_id, q.question, passage_id, gold.doc_id, ()))
    return asked
