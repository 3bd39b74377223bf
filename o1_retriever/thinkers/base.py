"""The Thinker protocol: several thoughts per query, many queries per call."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Sequence

from o1_retriever.prompts import ThoughtPrompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling parameters of thought generation (all of them are part of the cache key).

    Defaults for an untrained instruct thinker: short passages (32 tokens, chosen with the number
    of thoughts: :data:`o1_retriever.config.DEFAULT_THOUGHTS`) and a moderate temperature, so
    that thoughts sampled for one query differ. The paper's trained model used temperature 0.1 and
    128 tokens: see :data:`UNIFIED_SAMPLING`.
    """

    max_new_tokens: int = 32
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
    """Writes ``thoughts`` thoughts for each query (the embedder passes it positionally:
    ``think(queries, thoughts, sampling)``; a subclass may still name it ``k``).

    Implementations must batch: one :meth:`think` call handles all queries and all their samples,
    so a backend can fill its batch (or share the prompt prefill across the k samples).
    """

    prompt: ThoughtPrompt
    #: whether one call's queries are generated together (False: one after another, so timing
    #: a single-query call measures that query alone)
    batches_queries: bool = True

    @property
    @abstractmethod
    def identity(self) -> str:
        """Stable name of the model behind this thinker (part of the thought cache key)."""

    def _note_cut(self, tokens: int, limit: int) -> None:
        """Log that a query of ``tokens`` tokens was cut to ``limit`` for the prompt: a warning the
        first time, then at debug level (``adapt`` cuts most chunks on purpose: one line says so,
        not one per chunk)."""
        first = not getattr(self, "_cut_noted", False)
        self._cut_noted = True
        log.log(logging.WARNING if first else logging.DEBUG, "query of %d tokens cut to %d for the thinker%s",
                tokens, limit, " (further cuts are logged at debug level)" if first else "")

    @abstractmethod
    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        """Return ``thoughts`` thoughts for every query, in query order, each passed through
        :func:`clean_thought`. A sample with nothing usable in it is ``""``: the embedder
        drops it (it never embeds an empty thought)."""

    async def athink(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        """:meth:`think` without blocking the event loop. This default runs :meth:`think` in a
        worker thread (right for local models, whose work is CPU or GPU bound); a thinker
        behind a network API overrides it to await its requests on the loop."""
        return await asyncio.to_thread(self.think, queries, thoughts, sampling)

    def check(self, thoughts: int, sampling: SamplingConfig) -> None:  # noqa: B027 - optional hook
        """Preflight, cheap and before any work: raise
        :class:`~o1_retriever.errors.ThinkerUnavailableError` when no query can get ``thoughts``
        thoughts of ``sampling`` (a chat prompt for a model without a chat template, a prompt
        that cannot fit, a server that refuses the model). A failure that may heal (a server
        down) is not raised here: each call then falls back on its own. Default: nothing to
        check. Callers go through :meth:`o1_retriever.ThinkingEmbedder.check_thinker`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, ...)."""


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first stop string that follows some written text (a completion that
    opens with a blank line is not cut to nothing)."""
    start = len(text) - len(text.lstrip())
    ends = [i for i in (text.find(s, start) for s in stop if s) if i >= 0]
    return text[: min(ends)] if ends else text


#: Reasoning models (DeepSeek-R1 distills, Qwen3 in thinking mode, QwQ) wrap their reasoning in
#: these tags, before the answer.
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_TEMPLATE_LEFTOVERS = ("<|im_end|>", "<|endoftext|>", "</s>", "<emb>")


def clean_thought(text: str, reasoning: str | None = None) -> str:
    r"""The thought in a generated text: chat-template leftovers and whitespace stripped, and
    for a reasoning model the answer after ``</think>``, or its reasoning when no answer fits.

    A reasoning model writes ``<think>reasoning</think>answer``. Its chat template may put the
    opening tag in the prompt (only ``</think>`` is generated), and a short token budget often
    cuts the text before the closing tag. The answer is the text that looks like the passages
    being searched; when the budget left none, the reasoning is kept instead: it is still text
    about the query, where an empty thought would carry nothing. ``reasoning`` is reasoning a
    server returned apart from the content (``reasoning_content`` or ``reasoning`` in
    OpenAI-compatible replies). The tags never remain; "" means nothing usable was written.

    Example::

        >>> clean_thought("<think>The user asks about tides.</think>\n\nTides follow the Moon.")
        'Tides follow the Moon.'
        >>> clean_thought("<think>\nTides come from the pull of the")
        'Tides come from the pull of the'
        >>> clean_thought("", reasoning="Okay, tides are driven by")
        'Okay, tides are driven by'
        >>> clean_thought("  <|im_end|>")
        ''
    """
    for leftover in _TEMPLATE_LEFTOVERS:
        text = text.replace(leftover, "")
    answer, inline_reasoning = text, ""
    if THINK_CLOSE in text:  # everything before the last closing tag is reasoning
        inline_reasoning, _, answer = text.rpartition(THINK_CLOSE)
    elif THINK_OPEN in text:  # reasoning cut by the token budget
        answer, _, inline_reasoning = text.partition(THINK_OPEN)
    answer = _without_think_tags(answer)
    if answer:
        return answer
    return _without_think_tags("\n".join(part for part in (reasoning, inline_reasoning) if part))


def _without_think_tags(text: str) -> str:
    return text.replace(THINK_OPEN, "").replace(THINK_CLOSE, "").strip()
