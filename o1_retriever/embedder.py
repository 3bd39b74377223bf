"""ThinkingEmbedder: think -> encode -> aggregate, the one entry class of o1-retriever."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence, overload, Literal

import numpy as np

from o1_retriever.aggregation import Aggregation, mean_vectors, query_texts
from o1_retriever.cache import ThoughtCache, cache_key
from o1_retriever.config import DEFAULT_THOUGHTS, EmbedderConfig, means_no_cache
from o1_retriever.encoders.base import Encoder
from o1_retriever.errors import InvalidQueryError, ThinkerError, ThinkerUnavailableError, check_query, is_valid_unicode, renamed_argument
from o1_retriever.factory import build_models
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought

log = logging.getLogger(__name__)

_AUTO_PROGRESS = 512  # document batches at least this long show a progress bar by default
_VECTOR_LRU_SIZE = 16384  # query strings whose vectors stay in memory (25 MB at 384 dimensions)


@dataclass
class QueryEmbedding:
    """A query vector with the thoughts that built it.

    ``fallback`` is True when thinking was asked for but the thinker failed, or wrote no usable
    (non-empty) thought for this query, so the vector is the plain query embedding (see
    ``strict`` to raise instead when the thinker fails).
    """

    query: str
    vector: np.ndarray
    thoughts: list[str]
    thinking: bool
    fallback: bool = False


class ThinkingEmbedder:
    """Embeds queries after thinking about them, and documents as they are.

    Example (offline defaults: SmolLM2-135M-Instruct thinks, all-MiniLM-L6-v2 embeds)::

        from o1_retriever import ThinkingEmbedder

        embedder = ThinkingEmbedder.from_config()
        q = embedder.embed_query("Do statins lower LDL cholesterol?", return_thoughts=True)
        print(q.thoughts, q.vector.shape)
        docs = embedder.embed_documents(["Statins inhibit HMG-CoA reductase ..."])
        baseline = embedder.embed_query("Do statins lower LDL cholesterol?", thinking=False)

    Args:
        thinker: writes the thoughts; ``None`` makes a plain (non-thinking) embedder.
        encoder: embeds (query, thought) strings and documents.
        aggregation: ``"o1"``, ``"o1+query"`` or ``"hyde"`` (see :mod:`o1_retriever.aggregation`).
        thoughts: thoughts per query (the attribute :attr:`thoughts`; ``k`` before 0.2).
        sampling: generation parameters (seeded: same inputs, same thoughts).
        cache: a :class:`ThoughtCache`, a path to one, or ``None`` (the string ``"none"`` too, as
            in :class:`EmbedderConfig` and ``--cache none``).
        strict: raise :class:`ThinkerError` when the thinker fails instead of falling back to
            the plain query embedding.
    """

    def __init__(
        self,
        thinker: Thinker | None,
        encoder: Encoder,
        *,
        aggregation: str | Aggregation = Aggregation.O1_QUERY,
        thoughts: int = DEFAULT_THOUGHTS,
        sampling: SamplingConfig | None = None,
        cache: ThoughtCache | str | Path | None = None,
        strict: bool = False,
    ) -> None:
        if thoughts < 1:
            raise ValueError("thoughts must be >= 1")
        self.thinker = thinker
        self.encoder = encoder
        self.aggregation = Aggregation.parse(aggregation)
        self.thoughts = thoughts
        self.sampling = sampling or SamplingConfig()
        if means_no_cache(cache):
            cache = None
        self.cache = ThoughtCache(cache) if isinstance(cache, (str, Path)) else cache
        self.strict = strict
        self._vector_lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vector_lock = threading.Lock()
        self._checked: set[tuple[Any, ...]] = set()  # what check_thinker found able to think

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: EmbedderConfig | None = None, *, models: tuple[Thinker | None, Encoder] | None = None, **overrides: Any) -> "ThinkingEmbedder":
        """Build from an :class:`EmbedderConfig` (defaults: the offline models). ``models``, a
        ready (thinker, encoder) pair, replaces the models the config's specs name (the
        framework adapters pass a LangChain or LlamaIndex model wrapped this way)."""
        config = replace(config or EmbedderConfig(), **overrides)
        thinker, encoder = models if models is not None else build_models(config)
        path = config.cache_path()
        return cls(
            thinker,
            encoder,
            aggregation=config.aggregation,
            thoughts=config.thoughts,
            sampling=config.sampling,
            cache=ThoughtCache(path, max_rows=config.cache_max_rows) if path else None,
            strict=config.strict,
        )

    @property
    def k(self) -> int:
        """Deprecated name of :attr:`thoughts` (thoughts per query); goes in the next minor version."""
        _deprecated_attribute()
        return self.thoughts

    @k.setter
    def k(self, value: int) -> None:
        _deprecated_attribute()
        self.thoughts = value

    # -- identity ----------------------------------------------------------------------------
    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def fingerprint(self) -> dict[str, Any]:
        """Identity of the document side (what a collection records and checks)."""
        return self.encoder.fingerprint()

    # -- thinking ----------------------------------------------------------------------------
    def check_thinker(self, thoughts: int | None = None, *, k: int | None = None) -> None:
        """Refuse at once, before any work, a thinker that cannot think about any query: raises
        :class:`ThinkerUnavailableError` (never a fallback, even without ``strict``) naming the
        model, the cause and the remedy (see :meth:`Thinker.check`). Every entry point calls it
        before its work, and :meth:`think` before thinking; a success is remembered per
        (thinker, prompt, thoughts, sampling), so it costs one check. Nothing to check without a
        thinker. ``thoughts``: per query (default: the embedder's); ``k`` is its deprecated name."""
        thoughts = self._thoughts_arg(thoughts, k, "check_thinker")
        if self.thinker is None:
            return
        key = (self.thinker.identity, self.thinker.prompt.key, thoughts, self.sampling)
        if key not in self._checked:
            self.thinker.check(thoughts, self.sampling)
            self._checked.add(key)

    def _thoughts_arg(self, thoughts: int | None, k: int | None, caller: str) -> int:
        """The thoughts per query a call asked for (``k``: the deprecated name), else the embedder's."""
        return renamed_argument(thoughts, k, new="thoughts", old="k", caller=f"ThinkingEmbedder.{caller}", depth=2) or self.thoughts

    def think(self, queries: Sequence[str], thoughts: int | None = None, *, k: int | None = None) -> list[list[str]]:
        """Up to ``thoughts`` thoughts for each query (default: the embedder's; ``k`` is its
        deprecated name): cached ones are reused, the rest are generated in one batched call.
        Every thought goes through
        :func:`~o1_retriever.thinkers.base.clean_thought` (a reasoning model's answer, or its
        reasoning, without think tags) and empty thoughts are dropped: an empty thought is never
        embedded. A query left with none gets ``[]``, is not cached, and is logged as a warning
        (with ``strict``, raises :class:`ThinkerError` instead). Raises :class:`ThinkerError` if
        the thinker fails."""
        thoughts = self._thoughts_arg(thoughts, k, "think")
        key_of, known, todo = self._cached_thoughts(queries, thoughts)
        if todo:
            try:
                written = self.thinker.think(todo, thoughts, self.sampling)
            except ThinkerError:
                raise
            except Exception as exc:  # any backend failure becomes one clear error
                raise self._thinker_failure(exc) from exc
            known.update(self._keep_thoughts(key_of, todo, written, thoughts))
        return self._served_thoughts(queries, key_of, known)

    async def athink(self, queries: Sequence[str], thoughts: int | None = None, *, k: int | None = None) -> list[list[str]]:
        """:meth:`think` on the event loop: the same cache keys and rules, the missing thoughts
        from the thinker's :meth:`~o1_retriever.thinkers.base.Thinker.athink` (all queries and
        all their samples at once), cache reads and writes in a worker thread."""
        thoughts = self._thoughts_arg(thoughts, k, "athink")
        key_of, known, todo = await asyncio.to_thread(self._cached_thoughts, queries, thoughts)
        if todo:
            try:
                written = await self.thinker.athink(todo, thoughts, self.sampling)
            except ThinkerError:
                raise
            except Exception as exc:
                raise self._thinker_failure(exc) from exc
            known.update(await asyncio.to_thread(self._keep_thoughts, key_of, todo, written, thoughts))
        return self._served_thoughts(queries, key_of, known)

    def _cached_thoughts(self, queries: Sequence[str], thoughts: int) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
        """(cache key of each distinct query, thoughts the cache holds by key, queries to think about)."""
        queries = [check_query(q) for q in queries]
        if self.thinker is None:
            raise ThinkerError("this embedder has no thinker")
        self.check_thinker(thoughts)
        key_of = {q: self._key(q, thoughts) for q in queries}  # each distinct query hashed once
        known = self.cache.get_many(sorted(set(key_of.values()))) if self.cache is not None else {}
        return key_of, known, [q for q, key in key_of.items() if key not in known]

    def _thinker_failure(self, exc: Exception) -> ThinkerError:
        assert self.thinker is not None
        return ThinkerError(f"{self.thinker.identity} failed to think: {exc}")

    def _keep_thoughts(self, key_of: dict[str, str], todo: list[str], written: Any, thoughts: int) -> dict[str, list[str]]:
        """The thinker's fresh thoughts by cache key, checked and stored in the cache."""
        assert self.thinker is not None
        fresh = {key_of[q]: t for q, t in zip(todo, self._usable_output(written, len(todo), thoughts))}
        if self.cache is not None:
            # Another writer may have stored this query first: serve what the cache holds,
            # so every caller sees the same thoughts for the same key.
            prompt = self.thinker.prompt
            fresh.update(self.cache.put_many(
                [(key_of[q], q, fresh[key_of[q]]) for q in todo if fresh[key_of[q]]],
                thinker=self.thinker.identity,
                prompt=f"{prompt.name}/v{prompt.version}",
            ))
        return fresh

    def _served_thoughts(self, queries: Sequence[str], key_of: dict[str, str], known: dict[str, list[str]]) -> list[list[str]]:
        """Each query's usable thoughts; queries left with none are logged (``strict``: raised)."""
        assert self.thinker is not None
        usable = {key: _usable(thoughts) for key, thoughts in known.items()}  # rows cached by older versions may hold tags or blanks
        bare = [q for q, key in key_of.items() if not usable[key]]
        if bare:
            message = f"{self.thinker.identity} wrote no usable thought for {len(bare)} of {len(key_of)} queries (e.g. {bare[0][:60]!r})"
            if self.strict:
                raise ThinkerError(message)
            log.warning("%s: they fall back to their plain query embedding", message)
        return [list(usable[key_of[q]]) for q in queries]

    def _usable_output(self, written: Any, queries: int, thoughts: int) -> list[list[str]]:
        """The thinker's output, checked (``thoughts`` strings for each query), through
        :func:`clean_thought` (any thinker's think tags go) and without empty thoughts."""
        assert self.thinker is not None
        if len(written) != queries or any(isinstance(t, str) or len(t) != thoughts for t in written):
            raise ThinkerError(f"{self.thinker.identity} returned the wrong number of thoughts")
        if any(not isinstance(t, str) for group in written for t in group):
            raise ThinkerError(f"{self.thinker.identity} returned a thought that is not a string")
        kept = [_usable(group) for group in written]
        dropped = queries * thoughts - sum(map(len, kept))
        if dropped:
            log.info("%s wrote %d empty thoughts out of %d: dropped", self.thinker.identity, dropped, queries * thoughts)
        return kept

    def _key(self, query: str, thoughts: int) -> str:
        assert self.thinker is not None
        return cache_key(
            thinker=self.thinker.identity,
            prompt=self.thinker.prompt.key,
            sampling=self.sampling.as_dict(),
            thoughts=thoughts,
            query=query,
        )

    # -- queries -----------------------------------------------------------------------------
    @overload
    def embed_query(self, query: str, *, thinking: bool | None = ..., thoughts: int | None = ..., aggregation: str | None = ..., return_thoughts: Literal[False] = ...) -> np.ndarray: ...
    @overload
    def embed_query(self, query: str, *, thinking: bool | None = ..., thoughts: int | None = ..., aggregation: str | None = ..., return_thoughts: Literal[True]) -> QueryEmbedding: ...
    def embed_query(self, query, *, thinking=None, thoughts=None, aggregation=None, return_thoughts=False):
        """One query vector (unit length). ``thinking=False`` gives the plain embedding of the
        query (the no-thinking baseline); ``return_thoughts=True`` returns a
        :class:`QueryEmbedding` carrying the thoughts."""
        result = self.embed_queries([query], thinking=thinking, thoughts=thoughts, aggregation=aggregation, return_thoughts=True)[0]
        return result if return_thoughts else result.vector

    def embed_queries(
        self,
        queries: Sequence[str],
        *,
        thinking: bool | None = None,
        thoughts: int | None = None,
        aggregation: str | Aggregation | None = None,
        return_thoughts: bool = False,
    ) -> Any:
        """Vectors for many queries: thoughts for all of them in one batched generation, then
        all (query, thought) strings in one encode call. Returns an array of shape
        (n, dimension), or a list of :class:`QueryEmbedding` with ``return_thoughts=True``."""
        queries, thinking, agg = self._query_plan(queries, thinking, aggregation)
        all_thoughts: list[list[str]] = [[] for _ in queries]
        fallback = False
        if thinking and queries:
            try:
                all_thoughts = self.think(queries, thoughts)
            except ThinkerError as exc:
                fallback = self._fall_back(exc)
        groups = self._query_groups(queries, all_thoughts, agg)
        return self._query_results(queries, all_thoughts, groups, self._vectors_of(groups), thinking, fallback, return_thoughts)

    async def aembed_query(self, query: str, *, thinking: bool | None = None, thoughts: int | None = None, aggregation: str | None = None, return_thoughts: bool = False) -> Any:
        """:meth:`embed_query` on the event loop (see :meth:`aembed_queries`)."""
        results = await self.aembed_queries([query], thinking=thinking, thoughts=thoughts, aggregation=aggregation, return_thoughts=True)
        return results[0] if return_thoughts else results[0].vector

    async def aembed_queries(
        self,
        queries: Sequence[str],
        *,
        thinking: bool | None = None,
        thoughts: int | None = None,
        aggregation: str | Aggregation | None = None,
        return_thoughts: bool = False,
    ) -> Any:
        """:meth:`embed_queries` without blocking the event loop: the k thoughts of every query
        are written concurrently by the thinker's ``athink`` (a framework model's own async
        calls), the strings are embedded by the encoder's ``aencode_queries``. Same cache keys,
        same vectors, same fallback and ``strict`` rules as the synchronous call."""
        queries, thinking, agg = self._query_plan(queries, thinking, aggregation)
        all_thoughts: list[list[str]] = [[] for _ in queries]
        fallback = False
        if thinking and queries:
            try:
                all_thoughts = await self.athink(queries, thoughts)
            except ThinkerError as exc:
                fallback = self._fall_back(exc)
        groups = self._query_groups(queries, all_thoughts, agg)
        return self._query_results(queries, all_thoughts, groups, await self._avectors_of(groups), thinking, fallback, return_thoughts)

    def _query_plan(self, queries: Sequence[str], thinking: bool | None, aggregation: str | Aggregation | None) -> tuple[list[str], bool, Aggregation]:
        """The checked queries, whether to think, and the aggregation of one embed call."""
        if isinstance(queries, str):
            raise InvalidQueryError("embed_queries takes a list of queries; use embed_query for one")
        queries = [check_query(q) for q in queries]
        thinking = self.thinker is not None if thinking is None else thinking
        if thinking and self.thinker is None:
            raise ThinkerError("thinking=True needs a thinker; this embedder has none")
        return queries, thinking, Aggregation.parse(aggregation) if aggregation is not None else self.aggregation

    def _fall_back(self, exc: ThinkerError) -> bool:
        """A failed thinker: raise with ``strict`` or when it can never think, else log and
        fall back to plain query vectors."""
        if self.strict or isinstance(exc, ThinkerUnavailableError):
            raise exc
        log.warning("thinking failed, falling back to plain query embeddings: %s", exc)
        return True

    def _query_groups(self, queries: list[str], all_thoughts: list[list[str]], agg: Aggregation) -> list[tuple[str, ...]]:
        return [
            tuple(query_texts(self.encoder, q, t, agg) if t else [self.encoder.query_text(q, None)])
            for q, t in zip(queries, all_thoughts)
        ]

    def _query_results(self, queries: list[str], all_thoughts: list[list[str]], groups: list[tuple[str, ...]], vectors: dict[tuple[str, ...], np.ndarray],
                       thinking: bool, fallback: bool, return_thoughts: bool) -> Any:
        results = [  # a query whose thoughts were all empty falls back on its own
            QueryEmbedding(q, vectors[group], t, thinking=thinking and not fallback and bool(t), fallback=fallback or (thinking and not t))
            for q, t, group in zip(queries, all_thoughts, groups)
        ]
        if return_thoughts:
            return results
        return np.stack([r.vector for r in results]) if results else np.zeros((0, self.dimension), np.float32)

    def _vectors_of(self, groups: list[tuple[str, ...]]) -> dict[tuple[str, ...], np.ndarray]:
        """Mean vector of each group of query strings, all missing strings in one encode call.

        Vectors are kept in a small in-process LRU keyed by the exact string: a repeated query
        whose thoughts come from the cache then costs no encoding at all, instead of k+1
        encodings against the single one of a plain query, and the bare query that
        ``thinking="auto"`` searched with first is not encoded again for ``o1+query``.
        """
        known, todo = self._remembered_vectors(groups)
        if todo:
            known.update(self._remember_vectors(todo, self.encoder.encode_queries(todo)))
        return dict(zip(groups, mean_vectors(groups, known)))

    async def _avectors_of(self, groups: list[tuple[str, ...]]) -> dict[tuple[str, ...], np.ndarray]:
        """:meth:`_vectors_of` with the encoder's ``aencode_queries``."""
        known, todo = self._remembered_vectors(groups)
        if todo:
            known.update(self._remember_vectors(todo, await self.encoder.aencode_queries(todo)))
        return dict(zip(groups, mean_vectors(groups, known)))

    def _remembered_vectors(self, groups: list[tuple[str, ...]]) -> tuple[dict[str, np.ndarray], list[str]]:
        """(vectors the LRU holds by string, strings still to encode) of the groups' strings."""
        strings = list(dict.fromkeys(text for group in groups for text in group))
        with self._vector_lock:
            known = {t: self._vector_lru[t] for t in strings if t in self._vector_lru}
            for t in known:
                self._vector_lru.move_to_end(t)
        return known, [t for t in strings if t not in known]

    def _remember_vectors(self, texts: list[str], vectors: np.ndarray) -> dict[str, np.ndarray]:
        fresh = dict(zip(texts, vectors))
        with self._vector_lock:
            self._vector_lru.update(fresh)
            while len(self._vector_lru) > _VECTOR_LRU_SIZE:
                self._vector_lru.popitem(last=False)
        return fresh

    # -- documents ---------------------------------------------------------------------------
    def embed_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Document vectors (no thinking), shape (n, dimension), rows unit length."""
        texts = _checked_documents(texts)
        if show_progress is None:
            show_progress = len(texts) >= _AUTO_PROGRESS
        return self.encoder.encode_documents(texts, show_progress=show_progress)

    async def aembed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`embed_documents` without blocking the event loop (the encoder's ``aencode_documents``)."""
        return await self.encoder.aencode_documents(_checked_documents(texts))

    def forget_vectors(self) -> None:
        """Drop the in-memory query vectors (thoughts stay in the thought cache): the next call
        encodes again, as a first-time query does. Evaluation uses it to time each system fairly."""
        with self._vector_lock:
            self._vector_lru.clear()

    def close(self) -> None:
        if self.thinker is not None:
            self.thinker.close()


def _deprecated_attribute() -> None:
    import warnings

    warnings.warn("ThinkingEmbedder.k is deprecated, use ThinkingEmbedder.thoughts (k goes in the next minor version)", DeprecationWarning, stacklevel=3)


def _checked_documents(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of valid strings, or an :class:`InvalidQueryError` naming the first bad one."""
    if isinstance(texts, str):
        raise InvalidQueryError("embed_documents takes a list of texts")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InvalidQueryError(f"documents must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    broken = [i for i, t in enumerate(texts) if not is_valid_unicode(t)]
    if broken:
        raise InvalidQueryError(f"document {broken[0]} is not valid Unicode text (it contains a lone surrogate)")
    return texts


def _usable(thoughts: Sequence[str]) -> list[str]:
    """The thoughts worth embedding: cleaned (idempotent for a thinker's already clean output),
    none empty."""
    return [thought for thought in map(clean_thought, thoughts) if thought]


def as_thinking_embedder(value: Any, *, wrappers: tuple[type, ...], default: Callable[[], Any], caller: str) -> ThinkingEmbedder:
    """The core embedder behind a framework adapter's embedder argument, the one rule both
    adapters follow: a :class:`ThinkingEmbedder` as it is; one of the adapter's ``wrappers``
    (``O1Embeddings``, ``O1Embedding``) by its ``thinking_embedder``; ``None`` by ``default()``
    (a wrapper with the offline defaults). Anything else raises
    :class:`~o1_retriever.errors.ArgumentError` naming ``caller`` and what it accepts."""
    if value is None:
        value = default()
    if isinstance(value, ThinkingEmbedder):
        return value
    if isinstance(value, wrappers):
        return value.thinking_embedder
    from o1_retriever.errors import ArgumentError

    accepted = " or ".join([w.__name__ for w in wrappers] + ["a ThinkingEmbedder"])
    raise ArgumentError(f"{caller} needs {accepted} to embed queries, got {type(value).__name__}")
