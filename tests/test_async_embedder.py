"""ThinkingEmbedder's async path (aembed_query / aembed_queries / athink / aembed_documents) on the
real offline models: the same thoughts, cache keys and vectors as the sync path, and the same
fallback rules (issue 17)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from o1_retriever import ThinkerError
from o1_retriever.cache import ThoughtCache

pytestmark = pytest.mark.slow

QUESTION = "Which metal is liquid at room temperature?"


async def test_async_matches_sync_and_shares_the_cache(embedder):
    fresh = await embedder.aembed_query(QUESTION, return_thoughts=True)
    assert fresh.thinking and len(fresh.thoughts) == 2
    rows = len(embedder.cache)
    embedder.forget_vectors()
    again = embedder.embed_query(QUESTION, return_thoughts=True)  # served from the rows the async call wrote
    assert again.thoughts == fresh.thoughts and len(embedder.cache) == rows == 1
    assert np.allclose(again.vector, fresh.vector, atol=1e-6)
    both = await embedder.aembed_queries([QUESTION, "Why is the sky blue?"])
    assert both.shape == (2, 384) and np.allclose(both[0], fresh.vector, atol=1e-6)
    plain = await embedder.aembed_query(QUESTION, thinking=False)
    assert np.allclose(plain, embedder.embed_query(QUESTION, thinking=False), atol=1e-6)
    docs = await embedder.aembed_documents(["Mercury is a liquid metal."])
    assert np.allclose(docs, embedder.embed_documents(["Mercury is a liquid metal."]), atol=1e-6)


async def test_async_failures_fall_back_or_raise_as_sync(embedder, tmp_path):
    """Plumbing: a thinker whose athink fails (as a server down would) gives the plain vector
    without strict, and nothing is cached; with strict, a ThinkerError."""
    from o1_retriever import ThinkingEmbedder
    from o1_retriever.thinkers.base import Thinker

    class Down(Thinker):
        prompt = embedder.thinker.prompt
        identity = "down"

        def think(self, queries, k, sampling):
            raise AssertionError("the async path must not call think")

        async def athink(self, queries, k, sampling):
            raise ConnectionError("connection refused")

    cache = ThoughtCache(tmp_path / "empty.sqlite")
    lenient = ThinkingEmbedder(Down(), embedder.encoder, thoughts=2, cache=cache)
    result = await lenient.aembed_query(QUESTION, return_thoughts=True)
    assert result.fallback and result.thoughts == [] and len(cache) == 0
    assert np.allclose(result.vector, embedder.embed_query(QUESTION, thinking=False), atol=1e-6)
    strict = ThinkingEmbedder(Down(), embedder.encoder, thoughts=2, cache=cache, strict=True)
    with pytest.raises(ThinkerError, match="down failed to think: connection refused"):
        await strict.aembed_query(QUESTION)


async def test_the_loop_stays_free_while_a_local_model_thinks(embedder):
    """The default athink runs a local model in a worker thread: a ticker keeps ticking."""
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await embedder.aembed_query("Why do honey bees dance?")
    task.cancel()
    assert ticks >= 5
