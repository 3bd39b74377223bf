"""Hard negatives mined with a dense encoder, for rows that have none."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from o1_retriever.encoders.base import Encoder
from o1_retriever.training.data import PairRow


def mine_hard_negatives(
    rows: Sequence[PairRow],
    corpus: Sequence[str],
    encoder: Encoder,
    *,
    n: int = 15,
    skip: int = 0,
    corpus_vectors: np.ndarray | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Give every row without negatives its ``n`` highest-ranked non-positive passages of
    ``corpus`` (after skipping the first ``skip`` of them, which may be unlabelled positives).
    Returns the corpus vectors so a caller can reuse them."""
    corpus = list(corpus)
    todo = [r for r in rows if not r.neg]
    if corpus_vectors is None:
        corpus_vectors = encoder.encode_documents(corpus, show_progress=show_progress)
    if not todo or not corpus:
        return corpus_vectors
    q = encoder.encode_queries([encoder.query_text(r.query, None) for r in todo])
    scores = q @ corpus_vectors.T
    depth = min(len(corpus), n + skip + max(len(r.pos) for r in todo))
    top = np.argsort(-scores, axis=1)[:, :depth]
    for row, ranked in zip(todo, top):
        positives = set(row.pos)
        picked = [corpus[j] for j in ranked if corpus[j] not in positives]
        row.neg = picked[skip : skip + n]
    return corpus_vectors
