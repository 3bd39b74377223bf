"""Bring your own models through LlamaIndex: a real llama.cpp server (SmolLM2 GGUF) driven by
llama-index-llms-openai-like's ``OpenAILike``, and MiniLM through
llama-index-embeddings-huggingface's ``HuggingFaceEmbedding``, as thinker and encoder (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from o1_retriever import SamplingConfig, ThinkerError, ThinkingEmbedder
from o1_retriever.cache import ThoughtCache
from o1_retriever.errors import ArgumentError, ModelLoadError
from o1_retriever.prompts import PASSAGE_PROMPT

from .conftest import QUESTION

pytestmark = pytest.mark.slow

pytest.importorskip("llama_index.llms.openai_like")
pytest.importorskip("llama_index.embeddings.huggingface")

from llama_index.core import Document, Settings, VectorStoreIndex  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ThinkingBlock  # noqa: E402
from llama_index.core.schema import QueryBundle  # noqa: E402
from llama_index.embeddings.huggingface import HuggingFaceEmbedding  # noqa: E402
from llama_index.llms.openai_like import OpenAILike  # noqa: E402

from llama_index.embeddings.o1 import O1Embedding  # noqa: E402
from llama_index.embeddings.o1.models import LlamaIndexEncoder, LlamaIndexThinker, reply_thought  # noqa: E402
from llama_index.retrievers.o1 import O1QueryTransform, O1Retriever  # noqa: E402

TOKENS = 16


def openai_like(url: str, **kwargs) -> OpenAILike:
    """SmolLM2 on the llama.cpp server as a chat model, greedy."""
    return OpenAILike(model="smollm2", api_base=url, api_key="none", is_chat_model=True, temperature=kwargs.pop("temperature", 0.0),
                      max_tokens=TOKENS, max_retries=0, **kwargs)


@pytest.fixture(scope="module")
def hf_embedding(minilm_path):
    return HuggingFaceEmbedding(model_name=minilm_path)


def test_the_same_thoughts_give_the_same_vector_as_the_core(llama_server, hf_embedding, encoder):
    from o1_retriever.thinkers.openai import OpenAIThinker

    greedy = SamplingConfig(max_new_tokens=TOKENS, temperature=0.0)
    ours = ThinkingEmbedder(LlamaIndexThinker(openai_like(llama_server), PASSAGE_PROMPT), LlamaIndexEncoder(hf_embedding), thoughts=2, sampling=greedy)
    core = ThinkingEmbedder(OpenAIThinker(llama_server, "smollm2", prompt=PASSAGE_PROMPT), encoder, thoughts=2, sampling=greedy)
    mine, theirs = ours.embed_query(QUESTION, return_thoughts=True), core.embed_query(QUESTION, return_thoughts=True)
    assert mine.thinking and mine.thoughts and mine.thoughts == theirs.thoughts
    assert np.allclose(mine.vector, theirs.vector, atol=1e-5)
    assert np.allclose(ours.embed_documents(["Bees dance."]), core.embed_documents(["Bees dance."]), atol=1e-5)
    thinker = ours.thinker
    assert thinker.identity.startswith("llama-index:OpenAILike(model='smollm2', base_url=") and f"max_tokens={TOKENS}" in thinker.identity
    assert ours.encoder.identity.startswith(f"llama-index:HuggingFaceEmbedding(model={hf_embedding.model_name!r}")


async def test_o1embedding_with_framework_models_sync_and_async(llama_server, hf_embedding, tmp_path):
    embed_model = O1Embedding(llm=openai_like(llama_server), embed_model=hf_embedding, thoughts=2, cache=str(tmp_path / "t.sqlite"))
    index = VectorStoreIndex.from_documents(
        [Document(text="Mercury is the only metal that is liquid at room temperature."), Document(text="Honey bees dance.")],
        embed_model=embed_model,
    )
    hit = index.as_retriever(similarity_top_k=1).retrieve(QUESTION)[0]
    assert hit.node.get_content().startswith("Mercury")
    sync = embed_model.get_query_embedding(QUESTION)
    cached = len(ThoughtCache(tmp_path / "t.sqlite"))
    assert np.allclose(await embed_model.aget_query_embedding(QUESTION), sync, atol=1e-6)  # same cache key: no new row
    assert len(ThoughtCache(tmp_path / "t.sqlite")) == cached == 1
    fresh = await embed_model.aget_query_embedding("Why do bees dance?")
    assert len(fresh) == 384 and len(ThoughtCache(tmp_path / "t.sqlite")) == 2
    texts = await embed_model.aget_text_embedding_batch(["Bees dance."])
    assert np.allclose(texts, embed_model.get_text_embedding_batch(["Bees dance."]), atol=1e-6)


def test_from_settings_and_the_retrievers(llama_server, hf_embedding, tmp_path, monkeypatch):
    import chromadb
    from llama_index.core import StorageContext
    from llama_index.vector_stores.chroma import ChromaVectorStore

    monkeypatch.setattr(Settings, "_llm", None)
    monkeypatch.setattr(Settings, "_embed_model", None)
    with pytest.raises(ModelLoadError, match="Settings.llm and Settings.embed_model not set"):
        O1Embedding.from_settings()
    Settings.llm, Settings.embed_model = openai_like(llama_server), hf_embedding
    embed_model = O1Embedding.from_settings(thoughts=1, cache="none")
    assert embed_model.thinking_embedder.thinker.identity.startswith("llama-index:OpenAILike")
    # a store filled with the plain embedding model: the LLM adds thinking on the query side
    collection = chromadb.PersistentClient(path=str(tmp_path / "db")).get_or_create_collection("li-byo", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    store = ChromaVectorStore(chroma_collection=collection)
    VectorStoreIndex.from_documents([Document(text="Mercury is the only metal that is liquid at room temperature."), Document(text="Honey bees dance.")],
                                    storage_context=StorageContext.from_defaults(vector_store=store), embed_model=hf_embedding)
    hits = O1Retriever.from_vector_store(store, llm=Settings.llm, embed_model=Settings.embed_model, similarity_top_k=1).retrieve(QUESTION)
    assert hits[0].node.get_content().startswith("Mercury") and hits[0].node.metadata["thoughts"]
    with pytest.raises(ArgumentError, match="already has its thinker"):
        O1Retriever.from_vector_store(store, llm=Settings.llm, embed_model=embed_model)
    transform = O1QueryTransform(llm=Settings.llm, embed_model=Settings.embed_model, thoughts=2)
    bundle = transform.run(QueryBundle(QUESTION))
    assert len(transform.last_thoughts) == 2 and bundle.custom_embedding_strs[-1] == QUESTION


def test_one_model_is_given_once_and_failures_fall_back(llama_server, hf_embedding, caplog):
    from tests.llama_server import free_port

    with pytest.raises(ArgumentError, match="llm= gives the model as an object"):
        O1Embedding(llm=openai_like(llama_server), thinker="smollm2")
    with pytest.raises(ArgumentError, match="embed_model= gives the model as an object; encoder="):
        O1Embedding(embed_model=hf_embedding, encoder="minilm")
    with pytest.raises(ArgumentError, match="plain embedding model"):
        LlamaIndexEncoder(O1Embedding(thoughts=1))
    down = openai_like(f"http://127.0.0.1:{free_port()}/v1", timeout=5)
    embed_model = O1Embedding(llm=down, embed_model=hf_embedding, thoughts=2, cache="none")
    vector = embed_model.get_query_embedding(QUESTION)
    assert np.allclose(vector, hf_embedding.get_query_embedding(QUESTION) / np.linalg.norm(hf_embedding.get_query_embedding(QUESTION)), atol=1e-5)
    assert "OpenAILike(model='smollm2'" in caplog.text
    strict = O1Embedding(llm=down, embed_model=hf_embedding, thoughts=2, cache="none", strict=True)
    with pytest.raises(ThinkerError, match=r"failed: \w*ConnectionError"):
        strict.get_query_embedding(QUESTION)


def test_reasoning_replies_are_cleaned():
    assert reply_thought(ChatMessage(role=MessageRole.ASSISTANT, content="<think>hmm</think>\n\nMercury is liquid.")) == "Mercury is liquid."
    thinking_only = ChatMessage(role=MessageRole.ASSISTANT, blocks=[ThinkingBlock(content="Mercury melts at -39 C"), TextBlock(text="")])
    assert reply_thought(thinking_only) == "Mercury melts at -39 C"
    apart = ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"reasoning_content": "a metal"})
    assert reply_thought(apart) == "a metal"


def test_llama_index_reader_answers_for_rag_eval(llama_server):
    from llama_index.embeddings.o1.models import LlamaIndexReader

    reader = LlamaIndexReader(openai_like(llama_server))
    answers = reader.answer([QUESTION], [["Mercury is the only metal that is liquid at room temperature."]])
    assert len(answers) == 1 and answers[0].strip() and "smollm2" in reader.name
