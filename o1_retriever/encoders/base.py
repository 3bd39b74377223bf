"""The Encoder protocol: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Encoder(ABC):
    """Embeds queries (with or without a thought) and documents.

    The query side is split in two steps so the embedder can batch every (query, thought)
    string of many queries into one encode call: :meth:`query_text` builds the string,
    :meth:`encode_queries` embeds a batch of them.
    """

    @property
    @abstractmethod
    def identity(self) -> str:
        """Stable name of the model (part of the collection fingerprint)."""

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @abstractmethod
    def query_text(self, query: str | None, thought: str | None) -> str:
        """The string to embed for ``query`` and one ``thought`` (either may be None)."""

    @abstractmethod
    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed strings built by :meth:`query_text`; shape (n, dimension), rows unit length."""

    @abstractmethod
    def encode_documents(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed documents (never with thoughts); shape (n, dimension), rows unit length."""

    async def aencode_queries(self, texts: list[str]) -> np.ndarray:
        """:meth:`encode_queries` without blocking the event loop (default: in a worker thread;
        an encoder behind a network API overrides it to await its requests)."""
        return await asyncio.to_thread(self.encode_queries, texts)

    async def aencode_documents(self, texts: list[str]) -> np.ndarray:
        """:meth:`encode_documents` without blocking the event loop (default: in a worker thread)."""
        return await asyncio.to_thread(self.encode_documents, texts)

    def fingerprint(self) -> dict[str, Any]:
        """What decides document vectors. Two encoders with the same fingerprint fill a
        collection interchangeably; a different one must be refused."""
        return {"encoder": self.identity, "dimension": self.dimension, **self._document_settings()}

    def _document_settings(self) -> dict[str, Any]:
        return {}


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
