"""The Thinker protocol: k thoughts per query, many queries per call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

from o1_retriever.prompts import ThoughtPrompt


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling parameters of thought generation (all of them are part of the cache key).

    Defaults follow ../shared/docs/baselines.md for an untrained instruct thinker (short
    passages, moderate temperature so the k thoughts differ). The paper's trained model used
    temperature 0.1 and 128 tokens: see :data:`UNIFIED_SAMPLING`.
    """

    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")

    def as_dict(self) -> dict:
        return asdict(self)


UNIFIED_SAMPLING = SamplingConfig(max_new_tokens=128, temperature=0.1, top_p=0.9, seed=0)


class Thinker(ABC):
    """Writes ``k`` thoughts for each query.

    Implementations must batch: one :meth:`think` call handles all queries and all k samples,
    so a backend can fill its batch (or share the prompt prefill across the k samples).
    """

    prompt: ThoughtPrompt

    @property
    @abstractmethod
    def identity(self) -> str:
        """Stable name of the model behind this thinker (part of the thought cache key)."""

    @abstractmethod
    def think(self, queries: list[str], k: int, sampling: SamplingConfig) -> list[list[str]]:
        """Return ``k`` thoughts for every query, in query order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, ...)."""


def clean_thought(text: str) -> str:
    """Strip whitespace and chat-template leftovers from a generated thought."""
    for marker in ("<|im_end|>", "<|endoftext|>", "</s>", "<emb>"):
        text = text.replace(marker, "")
    return text.strip()
