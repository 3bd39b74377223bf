"""``O1Embeddings``: LangChain ``Embeddings`` that think before embedding a query."""

from __future__ import annotations

import threading
from typing import Any, Optional

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from o1_retriever import Aggregation, EmbedderConfig, ThinkingEmbedder
from o1_retriever.adapters import check_model_fields, framework_embedder
from o1_retriever.factory import thought_prompt

from langchain_o1.models import LangChainEncoder, LangChainThinker


#: the model fields' defaults: EmbedderConfig's, the one place the CLI's options read theirs too
_DEFAULT = EmbedderConfig.option_defaults()


class O1Embeddings(BaseModel, Embeddings):
    """Thinking-before-retrieval embeddings (O1 Embedder) for LangChain.

    ``embed_query`` lets a small language model write ``thoughts`` short passages about the
    query, embeds query + thought for each and averages them; ``embed_documents`` embeds the
    texts as they are (documents never think). Vectors are unit length, returned as Python
    ``float`` lists. The models load on first use, once per process.

    Example (offline defaults: SmolLM2-135M-Instruct thinks, all-MiniLM-L6-v2 embeds)::

        from langchain_chroma import Chroma
        from langchain_o1 import O1Embeddings

        embeddings = O1Embeddings(thoughts=2, max_new_tokens=32)
        store = Chroma("notes", embedding_function=embeddings,
                       collection_metadata={"hnsw:space": "cosine"})
        store.add_texts(["Mercury is the only metal that is liquid at room temperature."])
        store.similarity_search("Which metal is liquid at room temperature?", k=1)

    Bring your own models: ``llm=`` any LangChain chat model, LLM or Runnable thinks (through
    its own ``batch`` / ``abatch``, with the caller's callbacks), ``base_embeddings=`` any
    LangChain ``Embeddings`` embeds queries and documents::

        embeddings = O1Embeddings(llm=ChatOpenAI(model="gpt-4o-mini", max_tokens=64),
                                  base_embeddings=OpenAIEmbeddings(model="text-embedding-3-small"))

    Their identity (class, model name, base URL, temperature, token limit) keys the thought
    cache and the collection fingerprint; give ``thinker_id=`` / ``encoder_id=`` where none can
    be read. A model is given once: ``llm=`` with ``thinker=`` (or ``max_new_tokens=``,
    ``temperature=``: the model object's own settings) is refused, as is ``base_embeddings=``
    with ``encoder=``. ``aembed_query`` writes the k thoughts concurrently on the event loop.

    Pass ``embedder=`` to share an already built :class:`o1_retriever.ThinkingEmbedder`; the
    model fields are then ignored. ``thinking=False`` gives the plain dense baseline.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", protected_namespaces=())

    thinker: str = Field(_DEFAULT["thinker"], description="Thinker: 'smollm2', a HF id or folder, 'llamacpp:GGUF' or an OpenAI-compatible http(s)://.../v1 URL.")
    encoder: str = Field(_DEFAULT["encoder"], description="Encoder: 'minilm', a sentence-transformers id or folder, or 'last-token:SPEC'.")
    model: Optional[str] = Field(_DEFAULT["model"], description="A unified O1 model that thinks and embeds; replaces thinker and encoder.")
    thinker_model: Optional[str] = Field(_DEFAULT["thinker_model"], description="Model name on an OpenAI-compatible thinker server.")
    aggregation: str = Field(_DEFAULT["aggregation"], description="'o1', 'o1+query' or 'hyde'.")
    thoughts: int = Field(_DEFAULT["thoughts"], ge=1, description="Thoughts per query (k).")
    prompt: str = Field(_DEFAULT["prompt"], description="Thought prompt: 'auto' (passage, or the completion prompt passage-raw for a model without a chat template), 'passage', 'passage-raw', 'paper' or 'o1-unified'.")
    max_new_tokens: int = Field(_DEFAULT["max_new_tokens"], ge=1, description="Tokens per thought.")
    temperature: float = Field(_DEFAULT["temperature"], ge=0.0, description="Sampling temperature.")
    seed: Optional[int] = Field(_DEFAULT["seed"], description="Sampling seed (same query, same thoughts).")
    cache: Optional[str] = Field(_DEFAULT["cache"], description="Thought cache: 'default', a file path, or None/'none'.")
    cache_max_rows: int = Field(_DEFAULT["cache_max_rows"], ge=1, description="Thought cache bound in rows (least recently used rows go first).")
    device: Optional[str] = Field(_DEFAULT["device"], description="cpu, cuda, ... (default: cuda when available).")
    thinker_dtype: str = Field(_DEFAULT["thinker_dtype"], description="Precision of a transformers thinker: 'auto' (bfloat16 where the hardware computes it natively, else float32), 'float32', 'bfloat16', 'float16'.")
    thinker_threads: Optional[int] = Field(_DEFAULT["thinker_threads"], ge=1, description="CPU threads of a llama.cpp thinker (default: llama-cpp-python's choice).")
    strict: bool = Field(_DEFAULT["strict"], description="Raise when the thinker fails instead of falling back to the plain query.")
    thinking: bool = Field(True, description="False embeds queries without thoughts (the baseline).")
    embedder: Optional[ThinkingEmbedder] = Field(None, exclude=True, description="A ready ThinkingEmbedder; overrides the model fields.")
    llm: Optional[Any] = Field(None, exclude=True, description="A LangChain chat model, LLM or Runnable (prompt string to text) that thinks, instead of 'thinker'.")
    base_embeddings: Optional[Any] = Field(None, exclude=True, description="A LangChain Embeddings that embeds queries and documents, instead of 'encoder'.")
    thinker_id: Optional[str] = Field(None, description="Identity of the llm (thought cache key) when it cannot be read from the object.")
    encoder_id: Optional[str] = Field(None, description="Identity of base_embeddings (collection fingerprint) when it cannot be read from the object.")
    max_concurrency: int = Field(8, ge=1, description="Thinking requests to the llm in flight at most (async: shared by all queries).")

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _models: tuple[Any, Any] = PrivateAttr(default=(None, None))

    @model_validator(mode="after")
    def _wrap_models(self) -> "O1Embeddings":
        """Refuse a model given twice; wrap framework models now, so a model whose identity
        cannot be read is refused at construction, not at the first query."""
        check_model_fields(self.model_fields_set, thinker_object="llm", encoder_object="base_embeddings", given=self.__dict__)
        if self.embedder is None:
            config = self.to_config()
            thinker = LangChainThinker(self.llm, thought_prompt(config), thinker_id=self.thinker_id, max_concurrency=self.max_concurrency) if self.llm is not None else None
            encoder = LangChainEncoder(self.base_embeddings, encoder_id=self.encoder_id) if self.base_embeddings is not None else None
            self._models = (thinker, encoder)
        return self

    @field_validator("aggregation")
    @classmethod
    def _check_aggregation(cls, value: str) -> str:
        return Aggregation.parse(value).value

    def to_config(self) -> EmbedderConfig:
        """The :class:`o1_retriever.EmbedderConfig` these fields describe."""
        return EmbedderConfig.from_object(self)

    @property
    def thinking_embedder(self) -> ThinkingEmbedder:
        """The core embedder (built from the fields on first use)."""
        if self.embedder is None:
            with self._lock:
                if self.embedder is None:
                    self.embedder = framework_embedder(self.to_config(), *self._models)
                    if self.thinking:  # a thinker that cannot think is refused before any work
                        self.embedder.check_thinker()
        return self.embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents as they are (no thinking)."""
        if not texts:
            return []
        return self.thinking_embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Think about the query, then embed query + thoughts (``thinking=False``: the query only)."""
        return self.thinking_embedder.embed_query(text, thinking=self._think()).tolist()

    async def aembed_query(self, text: str) -> list[float]:
        """:meth:`embed_query` on the event loop: the k thoughts are written concurrently (the
        llm's ``abatch``; a local model in a worker thread), never blocking the loop."""
        return (await self.thinking_embedder.aembed_query(text, thinking=self._think())).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """:meth:`embed_documents` on the event loop (``base_embeddings.aembed_documents``)."""
        if not texts:
            return []
        return (await self.thinking_embedder.aembed_documents(texts)).tolist()

    def embed_query_with_thoughts(self, text: str) -> tuple[list[float], list[str]]:
        """The query vector and the thoughts that built it."""
        result = self.thinking_embedder.embed_query(text, thinking=self._think(), return_thoughts=True)
        return result.vector.tolist(), list(result.thoughts)

    def _think(self) -> bool:
        return self.thinking and self.thinking_embedder.thinker is not None
