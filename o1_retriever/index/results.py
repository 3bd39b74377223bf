"""What a search returns (:class:`Hit`, :class:`SearchResult`) and the keys the index keeps in
each chunk's metadata (never shown in a hit). Shared by dense search
(:mod:`o1_retriever.index.chroma`) and keyword / hybrid search (:mod:`o1_retriever.index.hybrid`).
How ``thinking=`` is spelled (:func:`~o1_retriever.search.thinking_mode`) is a query concept: it
lives in :mod:`o1_retriever.search` and stays importable from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from o1_retriever.search import THINKING_MODES, thinking_mode  # noqa: F401  (importable from here as before)

if TYPE_CHECKING:
    from o1_retriever.gate import GateDecision

HASH_KEY = "o1_hash"
SOURCE_KEY = "o1_source"


@dataclass
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ranks: dict[str, int | None] | None = None  # keyword / hybrid mode: the hit's rank on each side


@dataclass
class SearchResult:
    query: str
    thoughts: list[str]
    hits: list[Hit]
    thinking: bool
    fallback: bool = False
    gate: GateDecision | None = None  # thinking="auto": the gate's decision and its reason
    mode: str = "dense"

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``o1-retriever search --json``."""
        out: dict[str, Any] = {
            "query": self.query,
            "mode": self.mode,
            "thinking": self.thinking,
            "thoughts": self.thoughts,
            "results": [{"id": h.id, "score": h.score, "text": h.text, **({"ranks": h.ranks} if h.ranks else {})} for h in self.hits],
        }
        if self.gate is not None:
            out["gate"] = self.gate.to_dict()
        if self.fallback:
            out["fallback"] = True
        return out

