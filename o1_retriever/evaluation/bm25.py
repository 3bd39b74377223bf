"""BM25 baseline: the core's bm25s wrapper (:class:`o1_retriever.index.keyword.BM25`), which is
also the keyword side of ``search --mode keyword|hybrid``; one implementation for both."""

from o1_retriever.index.keyword import BM25

__all__ = ["BM25"]
