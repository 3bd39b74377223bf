"""The adapters' ``mode=`` (issue 20): LangChain's and LlamaIndex's ``O1Retriever`` search the
collection's keyword index alone or fused with the vectors, and each document / node carries both
ranks. Real offline models, real embedded Chroma (the sample corpus of tests/integrations)."""

from __future__ import annotations

import pytest

from tests.integrations.conftest import QUESTION

pytestmark = pytest.mark.slow


def test_langchain_retriever_hybrid_carries_both_ranks(sample_index):
    from langchain_o1 import O1Retriever

    retriever = O1Retriever(index=sample_index, k=3, thinking=False, mode="hybrid")
    docs = retriever.invoke(QUESTION)
    by_id = {d.metadata["id"]: d.metadata for d in docs}
    assert {"mercury.md#0", "gallium.md#0"} == {d.metadata["id"] for d in docs[:2]}  # the fusion's order of the two: docs/hybrid.md
    assert all({"dense_rank", "keyword_rank"} <= set(d.metadata) for d in docs)
    assert by_id["mercury.md#0"]["dense_rank"] == 1 and by_id["mercury.md#0"]["keyword_rank"] >= 1
    words = O1Retriever(index=sample_index, k=2, thinking=False, mode="keyword").invoke("mercury metal liquid")
    assert words[0].metadata["keyword_rank"] == 1 and "dense_rank" not in words[0].metadata
    plain = O1Retriever(index=sample_index, k=2, thinking=False).invoke(QUESTION)  # dense stays the default
    assert "keyword_rank" not in plain[0].metadata
    with pytest.raises(ValueError):
        O1Retriever(index=sample_index, mode="sparse")


def test_llama_index_retriever_hybrid_carries_both_ranks(sample_index):
    from llama_index.retrievers.o1 import O1Retriever

    retriever = O1Retriever(sample_index, similarity_top_k=3, thinking=False, mode="hybrid")
    hits = retriever.retrieve(QUESTION)
    by_id = {h.node.node_id: h.node for h in hits}
    assert {"mercury.md#0", "gallium.md#0"} == {h.node.node_id for h in hits[:2]}
    assert by_id["mercury.md#0"].metadata["dense_rank"] == 1 and by_id["mercury.md#0"].metadata["keyword_rank"] >= 1
    assert "keyword_rank" in hits[0].node.excluded_llm_metadata_keys  # kept out of prompts
    from o1_retriever import O1RetrieverError

    with pytest.raises(O1RetrieverError, match="mode must be one of"):
        O1Retriever(sample_index, mode="sparse")
