"""A plain BM25 baseline (``bm25s`` with Snowball stemming and stop words) over the same
chunks atende indexed: what lexical retrieval alone achieves, printed beside atende's."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import bm25s.stopwords
import numpy as np
import Stemmer

SNOWBALL = {"pt": "portuguese", "en": "english", "es": "spanish"}
STOPWORDS = {
    "pt": bm25s.stopwords.STOPWORDS_PORTUGUESE,
    "en": bm25s.stopwords.STOPWORDS_EN,
    "es": bm25s.stopwords.STOPWORDS_SPANISH,
}


class BM25Baseline:
    """BM25 over ``texts`` in ``language``; ``search`` returns indexes into ``texts``."""

    def __init__(self, texts: Sequence[str], language: str) -> None:
        self.language = language
        self.stemmer = Stemmer.Stemmer(SNOWBALL[language])
        self.size = len(texts)
        self.index = bm25s.BM25()
        tokens = bm25s.tokenize(
            list(texts),
            stopwords=list(STOPWORDS[language]),
            stemmer=self.stemmer.stemWords,
            show_progress=False,
        )
        self.index.index(tokens, show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        tokens = bm25s.tokenize(
            list(queries),
            stopwords=list(STOPWORDS[self.language]),
            stemmer=self.stemmer.stemWords,
            show_progress=False,
        )
        k = min(k, self.size)
        ids, scores = self.index.retrieve(tokens, k=k, show_progress=False)
        # a question sharing no term with any chunk scores 0 everywhere: that is no result
        return [
            [int(i) for i, score in zip(row, row_scores, strict=True) if score > 0]
            for row, row_scores in zip(np.asarray(ids), np.asarray(scores), strict=True)
        ]
