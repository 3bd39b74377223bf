"""Fakes of the two model protocols, for LOGIC TESTS ONLY.

``FakeThinker`` and ``FakeEncoder`` implement :class:`o1_retriever.Thinker` and
:class:`o1_retriever.encoders.base.Encoder` with no model behind them: thoughts are templated
strings, vectors are hashed bags of words. They exist so that the embedder's own logic (which
strings are embedded, how they are averaged, what is cached, when it falls back) can be tested
in milliseconds, in the fast tier (``pytest -m "not slow"``). They say nothing about retrieval
quality: any test about what a real model writes or how well it retrieves uses the real offline
models (``tests/conftest.py``: SmolLM2, MiniLM), as the project's rules require.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from o1_retriever.encoders.base import Encoder, normalize
from o1_retriever.prompts import PROMPTS
from o1_retriever.thinkers.base import SamplingConfig, Thinker


class FakeThinker(Thinker):
    """Writes ``"<query> idea <i>"`` as thought ``i`` (a fake: logic tests only).

    Args:
        fail: raise this exception from every :meth:`think` call (a backend that is down).
        empty: write empty thoughts (a model that wrote nothing usable).
    """

    def __init__(self, *, fail: Exception | None = None, empty: bool = False) -> None:
        self.prompt = PROMPTS["passage"]
        self.fail = fail
        self.empty = empty
        self.calls: list[list[str]] = []  # the queries of each think() call

    @property
    def identity(self) -> str:
        return "fake-thinker"

    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        self.calls.append(list(queries))
        if self.fail is not None:
            raise self.fail
        return [["" if self.empty else f"{q} idea {i}" for i in range(thoughts)] for q in queries]


class FakeEncoder(Encoder):
    """Unit vectors from a hashed bag of lower-cased words (a fake: logic tests only); the same
    string always gets the same vector, strings sharing words are close."""

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension
        self.encoded: list[str] = []  # every string encode_queries was asked for, in order

    @property
    def identity(self) -> str:
        return f"fake-encoder-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def query_text(self, query: str | None, thought: str | None) -> str:
        return " ".join(p for p in (query, thought) if p)

    def vector(self, text: str) -> np.ndarray:
        out = np.zeros(self._dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            out[int(hashlib.sha256(word.encode()).hexdigest(), 16) % self._dimension] += 1.0
        return normalize(out[None])[0]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self._dimension), np.float32)

    def encode_documents(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self._dimension), np.float32)
