"""How the k (query, thought) embeddings become one query vector.

* ``o1`` - the paper: mean of the L2-normalised embeddings of ``query + thought_i``.
* ``o1+query`` - as ``o1`` with the bare query's embedding in the mean. With an untrained
  thinker it was the only recipe that never lost to plain dense retrieval in our baselines
  (SciFact +0.5, HotpotQA +1.2 nDCG@10): the bare query anchors the mean when thoughts stray.
* ``hyde`` - thoughts only (as HyDE): the mean of the embeddings of each thought alone.

The mean is re-normalised. The paper's code does not; for one query that changes no ranking
under inner product or cosine, and it keeps scores comparable across queries.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping, Sequence

import numpy as np

from o1_retriever.encoders.base import Encoder, normalize


class Aggregation(str, Enum):
    O1 = "o1"
    O1_QUERY = "o1+query"
    HYDE = "hyde"

    @classmethod
    def parse(cls, value: "str | Aggregation") -> "Aggregation":
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(a.value for a in cls)
            raise ValueError(f"unknown aggregation {value!r}; choose one of {choices}") from None


def query_texts(encoder: Encoder, query: str, thoughts: list[str], aggregation: Aggregation) -> list[str]:
    """Strings to embed for one query under ``aggregation`` (their mean is the vector)."""
    if aggregation is Aggregation.HYDE:
        texts = [encoder.query_text(None, t) for t in thoughts if t.strip()]
        # A thinker that wrote nothing usable leaves the query as the only evidence.
        return texts or [encoder.query_text(query, None)]
    texts = [encoder.query_text(query, t) for t in thoughts]
    if aggregation is Aggregation.O1_QUERY or not texts:
        texts.append(encoder.query_text(query, None))
    return texts


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """Mean of unit vectors, re-normalised."""
    return normalize(normalize(vectors).mean(axis=0, keepdims=True))[0]


def distinct_strings(groups: Sequence[Sequence[str]]) -> list[str]:
    """Every string of the groups once, in first-seen order (what to encode for them)."""
    return list(dict.fromkeys(text for group in groups for text in group))


def mean_vectors(groups: Sequence[Sequence[str]], vectors: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Strings to query vectors, the one implementation (the embedder and the training
    evaluator): each group's vector is the :func:`mean_vector` of its strings' embeddings,
    ``vectors`` holding each string's (see :func:`distinct_strings`)."""
    return [mean_vector(np.stack([vectors[text] for text in group])) for group in groups]
