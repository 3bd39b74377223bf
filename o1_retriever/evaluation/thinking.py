"""The thinking phase of an evaluation run: every query's thoughts generated once (batched, with a
progress bar) through :meth:`ThinkingEmbedder.think`, counted and timed per query, failures
summed up; and why a thinking system has no result when thinking failed for all its queries.

A thinker that can never think (:class:`~o1_retriever.errors.ThinkerUnavailableError`) stops the
run before its first query; a failure of some calls falls back per query, and a system whose
queries all fell back is marked failed with the reason (:func:`failure_reason`), never reported
as a result equal to dense.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from o1_retriever.embedder import ThinkingEmbedder
from o1_retriever.errors import O1RetrieverError, ThinkerUnavailableError
from o1_retriever.thinkers.base import SamplingConfig, Thinker

log = logging.getLogger(__name__)


class CountingThinker(Thinker):
    """Wraps a thinker and counts the thoughts it actually generates (cache hits never reach it),
    and the seconds spent generating for each query (a batch's time split evenly over it)."""

    def __init__(self, inner: Thinker) -> None:
        self.inner = inner
        self.prompt = inner.prompt
        self.batches_queries = inner.batches_queries
        self.generated = 0
        self.seconds: dict[str, float] = {}

    @property
    def identity(self) -> str:
        return self.inner.identity

    def check(self, thoughts: int, sampling: SamplingConfig) -> None:
        self.inner.check(thoughts, sampling)

    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        start = time.perf_counter()
        out = self.inner.think(queries, thoughts, sampling)
        each = (time.perf_counter() - start) / max(1, len(queries))
        for q in queries:
            self.seconds[q] = self.seconds.get(q, 0.0) + each
        self.generated += sum(len(t) for t in out)
        return out

    def close(self) -> None:
        self.inner.close()


@dataclass
class ThinkingPhase:
    """What :func:`think_all` did: seconds spent, queries whose thinking failed (they fall back
    to plain embeddings) and the first failure's message."""

    seconds: float
    failed: int = 0
    error: str | None = None


def think_all(embedder: ThinkingEmbedder, queries: list[str], *, batch: int = 16, show_progress: bool = True, desc: str = "thinking") -> ThinkingPhase:
    """Generate (or read from the cache) the thoughts of every query in batches, with a progress
    bar (one query per call for a thinker that does not batch across queries, so a wrapping
    :class:`CountingThinker` times each query). A thinker that cannot think is refused before
    the first query; failed batches fall back (``strict``: raise), logged once as they start and
    summed up at the end."""
    from tqdm.auto import tqdm

    embedder.check_thinker()
    if embedder.thinker is not None and not embedder.thinker.batches_queries:
        batch = 1
    phase = ThinkingPhase(0.0)
    start = time.perf_counter()
    with tqdm(total=len(queries), desc=desc, unit="query", disable=not show_progress) as bar:
        for i in range(0, len(queries), batch):
            part = queries[i : i + batch]
            try:
                embedder.think(part)
            except ThinkerUnavailableError:
                raise
            except O1RetrieverError as exc:
                if embedder.strict:
                    raise
                if phase.error is None:
                    phase.error = str(exc)
                    log.warning("thinking failed (those queries fall back to plain embeddings): %s", exc)
                phase.failed += len(part)
            bar.update(len(part))
    phase.seconds = time.perf_counter() - start
    if phase.failed:
        log.warning("thinking failed for %d of %d queries; first error: %s", phase.failed, len(queries), phase.error)
    return phase


@contextmanager
def counting(embedder: ThinkingEmbedder, tmp: Path) -> Iterator[CountingThinker | None]:
    """For the length of a run: count generated thoughts, and give an embedder without a thought
    cache a temporary one (so every thinking system of the run reuses the same thoughts). The
    embedder is restored afterwards."""
    if embedder.thinker is None:
        yield None
        return
    saved = embedder.thinker, embedder.cache
    try:
        if embedder.cache is None:
            from o1_retriever.cache import ThoughtCache

            embedder.cache = ThoughtCache(tmp / "thoughts.sqlite")
        embedder.thinker = CountingThinker(embedder.thinker)
        yield embedder.thinker
    finally:
        embedder.thinker, embedder.cache = saved


@dataclass
class Generation:
    """What a run's thinking phase generated: seconds per query text (queries whose thoughts
    came from the cache are absent), the number of thoughts, and the first failure, if any.
    Every system reads the same snapshot, so a system never pays for another's generation."""

    seconds: dict[str, float] = field(default_factory=dict)
    thoughts: int = 0
    error: str | None = None

    def ms(self, query: str) -> float:
        return 1000 * self.seconds.get(query, 0.0)


def failure_reason(thought: dict[str, bool], meant: int, generation: Generation) -> str | None:
    """Why a thinking system has no result of its own: it was to think about ``meant`` queries
    and its vectors used thoughts for none (``thought``: query id -> used thoughts), so its
    figures would be those of the plain query. ``None`` when it has a result."""
    if meant == 0 or any(thought.values()):
        return None
    return f"thinking failed for every query: {generation.error}" if generation.error else "the thinker wrote no usable thought for any query"
