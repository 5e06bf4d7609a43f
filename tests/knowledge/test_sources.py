"""Where a submitted document's bytes come from (``knowledge.sources.read_submission``),
the choice the ``POST /v1/documents`` handler used to make itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from atende.config import Settings
from atende.errors import InvalidInput
from atende.knowledge.schemas import DocumentIn
from atende.knowledge.sources import read_submission


async def test_content_needs_a_source_and_takes_its_type_from_it() -> None:
    settings = Settings()
    plain = await read_submission(DocumentIn(source="faq/entregas", content="# Entregas"), settings)
    assert (plain.data, plain.source, plain.content_type) == (b"# Entregas", "faq/entregas", "markdown")
    html = await read_submission(DocumentIn(source="faq.html", content="<p>oi</p>"), settings)
    assert html.content_type is None  # told by the extension
    with pytest.raises(InvalidInput, match="`source` is required"):
        await read_submission(DocumentIn(content="# Entregas"), settings)


async def test_exactly_one_of_content_path_or_url() -> None:
    for body in (DocumentIn(source="a"), DocumentIn(source="a", content="x", path="a.md")):
        with pytest.raises(InvalidInput, match="exactly one of"):
            await read_submission(body, Settings())


async def test_a_path_is_read_under_the_ingest_root_only(tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text("# FAQ")
    settings = Settings(ingest_root=tmp_path)
    read = await read_submission(DocumentIn(path="faq.md"), settings)
    assert (read.data, read.source) == (b"# FAQ", "faq.md")
    with pytest.raises(InvalidInput, match="outside the ingest root"):
        await read_submission(DocumentIn(path="../etc/passwd"), settings)
    with pytest.raises(InvalidInput, match="reading server paths is disabled"):
        await read_submission(DocumentIn(path="faq.md"), Settings(ingest_root=None))
