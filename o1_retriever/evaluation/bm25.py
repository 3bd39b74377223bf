"""BM25 baseline with bm25s (Lucene's BM25 variant, k1=1.5, b=0.75, English stop words)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


class BM25:
    """A bm25s index over ``(ids, texts)``.

    Example::

        bm25 = BM25(["d1", "d2"], ["the cat sat", "dogs bark"])
        bm25.search(["cat"], k=1)   # [{"d1": 0.28...}]
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75, show_progress: bool = False) -> None:
        import bm25s

        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        self.ids = list(ids)
        self._tokenizer = bm25s.tokenization.Tokenizer(lower=True, stopwords="en")
        tokens = self._tokenizer.tokenize(list(texts), update_vocab=True, return_as="ids", show_progress=show_progress)
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self._bm25.index(tokens, show_progress=show_progress)

    def search(self, queries: Sequence[str], k: int = 100) -> list[dict[str, float]]:
        """Top-``k`` ``{document id: score}`` per query (documents with score 0 are left out)."""
        if not queries:
            return []
        k = min(k, len(self.ids))
        tokens = self._tokenizer.tokenize(list(queries), update_vocab=False, return_as="ids", show_progress=False)
        # a query none of whose words is in the corpus has no tokens: bm25s needs at least one
        tokens = [t if t else [0] for t in tokens]
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        out = []
        for row_docs, row_scores in zip(np.asarray(docs), np.asarray(scores)):
            out.append({self.ids[int(d)]: float(s) for d, s in zip(row_docs, row_scores) if s > 0})
        return out
