"""Bring your own models through LangChain: a real llama.cpp server (SmolLM2 GGUF) driven by
langchain-openai's ``ChatOpenAI``, and MiniLM through langchain-huggingface's
``HuggingFaceEmbeddings``, as thinker and encoder of o1-retriever (issue 17)."""

from __future__ import annotations

import asyncio
import re
import threading

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage

from o1_retriever import EmbedderMismatchError, SamplingConfig, ThinkerError, ThinkingEmbedder
from o1_retriever.cache import ThoughtCache
from o1_retriever.errors import ArgumentError, ModelLoadError, ThinkerUnavailableError
from o1_retriever.index import ChromaIndex, read_source
from o1_retriever.prompts import PASSAGE_PROMPT

from .conftest import QUESTION

pytestmark = pytest.mark.slow

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_huggingface")

from langchain_huggingface import HuggingFaceEmbeddings  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

from langchain_o1 import LangChainEncoder, LangChainThinker, O1Embeddings, O1Retriever  # noqa: E402
from langchain_o1.models import THINKING_TAG, message_thought  # noqa: E402

TOKENS = 16


def chat(url: str, **kwargs) -> ChatOpenAI:
    """SmolLM2 on the llama.cpp server, greedy (so two clients of it agree). llama-cpp-python's
    server reads ``max_tokens``, not the ``max_completion_tokens`` ChatOpenAI sends: extra_body."""
    return ChatOpenAI(base_url=url, api_key="none", model="smollm2", temperature=kwargs.pop("temperature", 0.0), max_tokens=TOKENS,
                      extra_body={"max_tokens": TOKENS}, max_retries=0, **kwargs)


@pytest.fixture(scope="module")
def hf_embeddings(minilm_path):
    return HuggingFaceEmbeddings(model_name=minilm_path)


@pytest.fixture()
def framework_embedder(llama_server, hf_embeddings, tmp_path):
    return ThinkingEmbedder(LangChainThinker(chat(llama_server)), LangChainEncoder(hf_embeddings), thoughts=2, cache=tmp_path / "thoughts.sqlite")


class ChatRuns(BaseCallbackHandler):
    """Records the chat-model runs a tracer would see: (run id, parent run id, tags)."""

    def __init__(self) -> None:
        self.chat_runs: list[tuple] = []
        self.retriever_runs: list = []

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, tags=None, **kwargs):
        self.chat_runs.append((run_id, parent_run_id, list(tags or [])))

    def on_retriever_start(self, serialized, query, *, run_id, **kwargs):
        self.retriever_runs.append(run_id)


def test_the_same_thoughts_give_the_same_vector_as_the_core(llama_server, hf_embeddings, encoder):
    """ChatOpenAI on the llama.cpp server writes what the core's OpenAI-compatible thinker writes
    (greedy), and HuggingFaceEmbeddings over the MiniLM folder embeds as the core's encoder does:
    the query vectors agree."""
    from o1_retriever.thinkers.openai import OpenAIThinker

    greedy = SamplingConfig(max_new_tokens=TOKENS, temperature=0.0)
    ours = ThinkingEmbedder(LangChainThinker(chat(llama_server), PASSAGE_PROMPT), LangChainEncoder(hf_embeddings), thoughts=2, sampling=greedy)
    core = ThinkingEmbedder(OpenAIThinker(llama_server, "smollm2", prompt=PASSAGE_PROMPT), encoder, thoughts=2, sampling=greedy)
    mine, theirs = ours.embed_query(QUESTION, return_thoughts=True), core.embed_query(QUESTION, return_thoughts=True)
    assert mine.thinking and mine.thoughts and mine.thoughts == theirs.thoughts
    assert np.allclose(mine.vector, theirs.vector, atol=1e-5)
    docs = ["Mercury is a liquid metal.", "Bees dance."]
    assert np.allclose(ours.embed_documents(docs), core.embed_documents(docs), atol=1e-5)
    assert ours.dimension == 384 and abs(float(np.linalg.norm(mine.vector)) - 1) < 1e-5


def test_identity_comes_from_the_model_and_keys_the_cache(llama_server, hf_embeddings, tmp_path):
    thinker = LangChainThinker(chat(llama_server))
    assert thinker.identity.startswith("langchain:ChatOpenAI(model='smollm2', base_url=") and "temperature=0.0" in thinker.identity
    assert f"max_tokens={TOKENS}" in thinker.identity
    assert LangChainThinker(chat(llama_server, temperature=0.7)).identity != thinker.identity
    bound = LangChainThinker(chat(llama_server).bind(stop=["\n\n"]))  # the model inside a binding, the bound arguments in the digest
    assert bound.chat and bound.identity.split("#")[0] == thinker.identity.split("#")[0] and bound.identity != thinker.identity
    encoder = LangChainEncoder(hf_embeddings)
    assert encoder.identity == f"langchain:HuggingFaceEmbeddings(model={hf_embeddings.model_name!r})"  # the folder given
    # two configurations never share cache rows: a hotter model is asked again
    cache = ThoughtCache(tmp_path / "t.sqlite")
    for temperature in (0.0, 0.7):
        ThinkingEmbedder(LangChainThinker(chat(llama_server, temperature=temperature)), encoder, thoughts=1, cache=cache).think([QUESTION])
    assert len(cache) == 2


def test_no_readable_identity_asks_for_one():
    """Plumbing: a fake chat model (no model name to read) must be named by the caller."""
    from langchain_core.embeddings import FakeEmbeddings
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    fake = FakeListChatModel(responses=["Mercury is liquid."])
    with pytest.raises(ModelLoadError, match="thinker_id="):
        O1Embeddings(llm=fake)
    with pytest.raises(ModelLoadError, match="encoder_id="):
        O1Embeddings(base_embeddings=FakeEmbeddings(size=8))
    named = O1Embeddings(llm=fake, thinker_id="fake-v1", base_embeddings=FakeEmbeddings(size=8), encoder_id="fake-8", cache="none", thoughts=1)
    assert named.thinking_embedder.thinker.identity == "fake-v1" and named.thinking_embedder.encoder.identity == "fake-8"
    with pytest.raises(ArgumentError, match="thinker_id= names the llm= object"):
        O1Embeddings(thinker_id="x")


def test_one_model_is_given_once(llama_server, hf_embeddings):
    with pytest.raises(ArgumentError, match="llm= gives the model as an object; thinker= describes it again"):
        O1Embeddings(llm=chat(llama_server), thinker="smollm2")
    with pytest.raises(ArgumentError, match="max_new_tokens"):
        O1Embeddings(llm=chat(llama_server), max_new_tokens=32)
    with pytest.raises(ArgumentError, match="encoder="):
        O1Embeddings(base_embeddings=hf_embeddings, encoder="minilm")
    with pytest.raises(ArgumentError, match="LangChain chat model"):
        O1Embeddings(llm="gpt-4o")
    with pytest.raises(ArgumentError, match="Embeddings"):
        LangChainEncoder(O1Embeddings(thoughts=1))


def test_o1embeddings_with_framework_models_in_a_chroma_store(llama_server, hf_embeddings, sample_corpus, tmp_path):
    from langchain_chroma import Chroma

    embeddings = O1Embeddings(llm=chat(llama_server), base_embeddings=hf_embeddings, thoughts=2, cache=str(tmp_path / "t.sqlite"))
    docs = list(read_source(sample_corpus))
    store = Chroma("byo", embedding_function=embeddings, persist_directory=str(tmp_path / "db"), collection_metadata={"hnsw:space": "cosine"})
    store.add_texts([d.text for d in docs], ids=[d.id for d in docs])
    # documents went through base_embeddings.embed_documents, normalised
    stored = np.asarray(store._collection.get(ids=[docs[0].id], include=["embeddings"])["embeddings"][0])
    assert np.allclose(stored, np.asarray(hf_embeddings.embed_documents([docs[0].text])[0]) / np.linalg.norm(hf_embeddings.embed_documents([docs[0].text])[0]), atol=1e-5)
    top = O1Retriever.from_vectorstore(store, k=2).invoke(QUESTION)
    assert top[0].id.startswith("mercury") and len(top[0].metadata["thoughts"]) == 2 and top[0].metadata["thinking"]
    # a store filled with the plain embeddings gets thinking from llm= alone
    plain = Chroma("byo-plain", embedding_function=hf_embeddings, persist_directory=str(tmp_path / "db"), collection_metadata={"hnsw:space": "cosine"})
    plain.add_texts([d.text for d in docs], ids=[d.id for d in docs])
    added = O1Retriever.from_vectorstore(plain, llm=chat(llama_server), k=1).invoke(QUESTION)
    assert added[0].id.startswith("mercury") and added[0].metadata["thoughts"]
    with pytest.raises(ArgumentError, match="not both"):
        O1Retriever.from_collection("byo", embeddings=embeddings, llm=chat(llama_server))


def test_a_collection_built_with_one_embeddings_object_refuses_another(framework_embedder, embedder, sample_corpus, tmp_path):
    index = ChromaIndex("byo-index", framework_embedder, path=tmp_path / "db")
    index.add(read_source(sample_corpus), show_progress=False)
    result = index.search(QUESTION, k=1)
    assert result.hits[0].id.startswith("mercury") and result.thinking
    with pytest.raises(EmbedderMismatchError):
        ChromaIndex("byo-index", embedder, path=tmp_path / "db")  # the core's MiniLM encoder: another identity


async def test_async_thinks_concurrently_with_the_same_cache_keys(llama_server, hf_embeddings, tmp_path):
    embeddings = O1Embeddings(llm=chat(llama_server), base_embeddings=hf_embeddings, thoughts=2, cache=str(tmp_path / "t.sqlite"))
    vector = await embeddings.aembed_query(QUESTION)
    assert isinstance(vector, list) and all(type(x) is float for x in vector)
    runs = ChatRuns()
    # the sync call finds the thoughts the async one cached: no new thinking call, same vector
    from langchain_core.runnables.config import set_config_context

    with set_config_context({"callbacks": [runs]}) as context:
        again = context.run(embeddings.embed_query, QUESTION)
    assert runs.chat_runs == [] and np.allclose(again, vector, atol=1e-6)
    docs = await embeddings.aembed_documents(["Mercury is a liquid metal."])
    assert np.allclose(docs, embeddings.embed_documents(["Mercury is a liquid metal."]), atol=1e-6)


def test_a_tracer_sees_the_thinking_calls_inside_the_retriever_run(framework_embedder, sample_corpus, tmp_path):
    index = ChromaIndex("byo-traced", framework_embedder, path=tmp_path / "db")
    index.add(read_source(sample_corpus), show_progress=False)
    runs = ChatRuns()
    docs = O1Retriever(index=index, k=1).invoke(QUESTION, config={"callbacks": [runs], "tags": ["mine"]})
    assert docs[0].metadata["thinking"] and len(runs.retriever_runs) == 1
    assert len(runs.chat_runs) == 2  # k=2 thoughts, one chat call each
    assert all(parent == runs.retriever_runs[0] and THINKING_TAG in tags and "mine" in tags for _, parent, tags in runs.chat_runs)


def test_a_failing_model_falls_back_with_a_one_line_reason_and_caches_nothing(hf_embeddings, tmp_path, caplog):
    from tests.llama_server import free_port
    from tests.openai_server import OpenAIStub

    down = ChatOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="none", model="smollm2", max_retries=0, timeout=5)
    cache = ThoughtCache(tmp_path / "t.sqlite")
    embedder = ThinkingEmbedder(LangChainThinker(down), LangChainEncoder(hf_embeddings), thoughts=2, cache=cache)
    result = embedder.embed_query(QUESTION, return_thoughts=True)
    assert result.fallback and not result.thinking and result.thoughts == []
    assert np.allclose(result.vector, embedder.embed_query(QUESTION, thinking=False), atol=1e-6)
    # the class name is the client's own (APIConnectionError in openai, OpenAIConnectionError in newer
    # langchain-openai releases); what matters is that the one line names the model and the cause
    assert len(cache) == 0 and "smollm2" in caplog.text and re.search(r"failed: \w*ConnectionError", caplog.text)
    strict = ThinkingEmbedder(LangChainThinker(down), LangChainEncoder(hf_embeddings), thoughts=2, cache=cache, strict=True)
    with pytest.raises(ThinkerError, match=r"ChatOpenAI\(model='smollm2'.*failed: \w*ConnectionError") as info:
        strict.embed_query(QUESTION)
    assert "\n" not in str(info.value)
    # refused credentials hold for every query: never a fallback
    with OpenAIStub(fail_always=True, fail_status=401) as stub:
        refused = ChatOpenAI(base_url=stub.url, api_key="wrong", model="smollm2", max_retries=0)
        with pytest.raises(ThinkerUnavailableError, match="AuthenticationError"):
            ThinkingEmbedder(LangChainThinker(refused), LangChainEncoder(hf_embeddings), thoughts=1, cache=cache).embed_query(QUESTION)
    assert len(cache) == 0


def test_reasoning_output_is_cleaned_as_the_core_cleans_it(hf_embeddings):
    """<think> text, reasoning_content and content-block lists, over a real HTTP reasoning stub
    and on LangChain's message shapes."""
    from tests.openai_server import OpenAIStub

    with OpenAIStub(reasoning=True) as stub:
        thinker = LangChainThinker(ChatOpenAI(base_url=stub.url, api_key="none", model="r1", max_tokens=40, max_retries=0))
        thoughts = thinker.think([QUESTION], 2, SamplingConfig())[0]
    assert all(t.startswith("answer") and "<think>" not in t and "okay" not in t for t in thoughts)
    assert message_thought(AIMessage("<think>The user asks.</think>\n\nMercury is liquid.")) == "Mercury is liquid."
    assert message_thought(AIMessage("", additional_kwargs={"reasoning_content": "Mercury melts at -39 C"})) == "Mercury melts at -39 C"
    blocks = [{"type": "reasoning", "reasoning": "hmm"}, {"type": "text", "text": "Mercury is liquid."}]
    assert message_thought(AIMessage(blocks)) == "Mercury is liquid."
    assert message_thought(AIMessage([{"type": "thinking", "thinking": "Mercury, a metal"}])) == "Mercury, a metal"


async def test_many_queries_share_the_concurrency_limit():
    """Plumbing (a fake chat model that counts its requests in flight): the k thoughts of 12
    queries under asyncio.gather never exceed max_concurrency, and do run concurrently."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.outputs import ChatGeneration, ChatResult

    state = {"now": 0, "peak": 0, "calls": 0}

    class Counting(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "counting"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            raise NotImplementedError("async only")

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
            state["now"] += 1
            state["calls"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.02)
            state["now"] -= 1
            return ChatResult(generations=[ChatGeneration(message=AIMessage(f"thought {state['calls']}"))])

    embedder = ThinkingEmbedder(LangChainThinker(Counting(), thinker_id="counting", max_concurrency=4), _TinyEncoder(), thoughts=3)
    results = await asyncio.gather(*(embedder.aembed_query(f"question {i}", return_thoughts=True) for i in range(12)))
    assert all(len(r.thoughts) == 3 and r.thinking for r in results)
    assert state["calls"] == 36 and 2 <= state["peak"] <= 4


class _TinyEncoder(LangChainEncoder):
    """Plumbing: LangChain's deterministic fake embeddings (a hash per text)."""

    def __init__(self) -> None:
        from langchain_core.embeddings import DeterministicFakeEmbedding

        super().__init__(DeterministicFakeEmbedding(size=8), encoder_id="fake-8")


def test_langchain_reader_answers_for_rag_eval(llama_server):
    from langchain_o1 import LangChainReader

    reader = LangChainReader(chat(llama_server))
    answers = reader.answer([QUESTION], [["Mercury is the only metal that is liquid at room temperature."]])
    assert len(answers) == 1 and answers[0].strip() and "smollm2" in reader.name


def test_thread_safety_of_the_sync_path(framework_embedder):
    """Two threads embedding at once get the vectors one thread gets."""
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(framework_embedder.embed_query(QUESTION))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2 and np.allclose(out[0], out[1], atol=1e-6)
