"""``O1Embedding``: a LlamaIndex ``BaseEmbedding`` that thinks before embedding a query."""

from __future__ import annotations

import threading
from typing import Any, List, Optional

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_validator

from o1_retriever import Aggregation, EmbedderConfig, ThinkingEmbedder
from o1_retriever.adapters import check_model_fields, framework_embedder
from o1_retriever.errors import ModelLoadError
from o1_retriever.factory import thought_prompt

from llama_index.embeddings.o1.models import LlamaIndexEncoder, LlamaIndexThinker


#: the model fields' defaults: EmbedderConfig's, the one place the CLI's options read theirs too
_DEFAULT = EmbedderConfig.option_defaults()


class O1Embedding(BaseEmbedding):
    """Thinking-before-retrieval embedding (O1 Embedder) for LlamaIndex.

    Query embeddings let a small language model write ``thoughts`` short passages about the
    query and average the embeddings of query + thought; text (document) embeddings never
    think. Use it as the ``embed_model`` of a ``VectorStoreIndex`` (for instance over a
    ``ChromaVectorStore``): nothing else changes. The models load on first use.

    Example (offline defaults: SmolLM2-135M-Instruct thinks, all-MiniLM-L6-v2 embeds)::

        from llama_index.core import Document, VectorStoreIndex
        from llama_index.embeddings.o1 import O1Embedding

        embed_model = O1Embedding(thoughts=2, max_new_tokens=32)
        index = VectorStoreIndex.from_documents(
            [Document(text="Mercury is the only metal that is liquid at room temperature.")],
            embed_model=embed_model,
        )
        nodes = index.as_retriever(similarity_top_k=1).retrieve("Which metal is liquid?")

    Bring your own models: ``llm=`` any LlamaIndex ``LLM`` thinks (``achat`` / ``acomplete`` on
    the async path), ``embed_model=`` any ``BaseEmbedding`` embeds queries and documents;
    :meth:`from_settings` takes ``Settings.llm`` and ``Settings.embed_model``::

        embed_model = O1Embedding(llm=OpenAILike(model="qwen3", api_base=URL, is_chat_model=True),
                                  embed_model=HuggingFaceEmbedding(model_name="BAAI/bge-small-en-v1.5"))

    Their identity (class, model name, base URL, temperature, token limit) keys the thought
    cache and the collection fingerprint; give ``thinker_id=`` / ``encoder_id=`` where none can
    be read. A model is given once: ``llm=`` with ``thinker=`` (or ``max_new_tokens=``,
    ``temperature=``: the model's own settings) is refused, as is ``embed_model=`` with
    ``encoder=``.

    Pass ``embedder=`` to share an already built :class:`o1_retriever.ThinkingEmbedder` (the
    model fields are then ignored). ``thinking=False`` gives the plain dense baseline.
    """

    model_name: str = Field(default="o1:smollm2+minilm", description="Name shown by LlamaIndex.")
    thinker: str = Field(default=_DEFAULT["thinker"], description="Thinker: 'smollm2', a HF id or folder, 'llamacpp:GGUF' or an http(s)://.../v1 URL.")
    encoder: str = Field(default=_DEFAULT["encoder"], description="Encoder: 'minilm', a sentence-transformers id or folder, or 'last-token:SPEC'.")
    model: Optional[str] = Field(default=_DEFAULT["model"], description="A unified O1 model that thinks and embeds.")
    thinker_model: Optional[str] = Field(default=_DEFAULT["thinker_model"], description="Model name on an OpenAI-compatible thinker server.")
    aggregation: str = Field(default=_DEFAULT["aggregation"], description="'o1', 'o1+query' or 'hyde'.")
    thoughts: int = Field(default=_DEFAULT["thoughts"], ge=1, description="Thoughts per query (k).")
    prompt: str = Field(default=_DEFAULT["prompt"], description="Thought prompt: 'auto' (passage, or the completion prompt passage-raw for a model without a chat template), 'passage', 'passage-raw', 'paper' or 'o1-unified'.")
    max_new_tokens: int = Field(default=_DEFAULT["max_new_tokens"], ge=1, description="Tokens per thought.")
    temperature: float = Field(default=_DEFAULT["temperature"], ge=0.0, description="Sampling temperature.")
    seed: Optional[int] = Field(default=_DEFAULT["seed"], description="Sampling seed.")
    cache: Optional[str] = Field(default=_DEFAULT["cache"], description="Thought cache: 'default', a file path, or None/'none'.")
    cache_max_rows: int = Field(default=_DEFAULT["cache_max_rows"], ge=1, description="Thought cache bound in rows (least recently used rows go first).")
    device: Optional[str] = Field(default=_DEFAULT["device"], description="cpu, cuda, ... (default: cuda when available).")
    thinker_dtype: str = Field(default=_DEFAULT["thinker_dtype"], description="Precision of a transformers thinker: 'auto' (bfloat16 where the hardware computes it natively, else float32), 'float32', 'bfloat16', 'float16'.")
    thinker_threads: Optional[int] = Field(default=_DEFAULT["thinker_threads"], ge=1, description="CPU threads of a llama.cpp thinker (default: llama-cpp-python's choice).")
    strict: bool = Field(default=_DEFAULT["strict"], description="Raise when the thinker fails instead of falling back.")
    thinking: bool = Field(default=True, description="False embeds queries without thoughts (the baseline).")
    llm: Optional[Any] = Field(default=None, exclude=True, description="A LlamaIndex LLM that thinks, instead of 'thinker'.")
    embed_model: Optional[Any] = Field(default=None, exclude=True, description="A LlamaIndex BaseEmbedding that embeds queries and documents, instead of 'encoder'.")
    thinker_id: Optional[str] = Field(default=None, description="Identity of the llm (thought cache key) when it cannot be read from the object.")
    encoder_id: Optional[str] = Field(default=None, description="Identity of embed_model (collection fingerprint) when it cannot be read from the object.")
    max_concurrency: int = Field(default=8, ge=1, description="Thinking requests to the llm in flight at most (async: shared by all queries).")

    _embedder: Optional[ThinkingEmbedder] = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _models: Any = PrivateAttr(default=(None, None))

    def __init__(self, embedder: Optional[ThinkingEmbedder] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_model_fields(self.model_fields_set, thinker_object="llm", encoder_object="embed_model", given={**self.__dict__, "embedder": embedder})
        self._embedder = embedder
        if embedder is None:  # wrap now: a model whose identity cannot be read is refused here, not at the first query
            config = self.to_config()
            thinker = LlamaIndexThinker(self.llm, thought_prompt(config), thinker_id=self.thinker_id, max_concurrency=self.max_concurrency) if self.llm is not None else None
            encoder = LlamaIndexEncoder(self.embed_model, encoder_id=self.encoder_id) if self.embed_model is not None else None
            self._models = (thinker, encoder)
            if "model_name" not in self.model_fields_set and (thinker or encoder):
                self.model_name = f"o1:{thinker.identity if thinker else self.thinker}+{encoder.identity if encoder else self.encoder}"

    @classmethod
    def from_settings(cls, **kwargs: Any) -> "O1Embedding":
        """An ``O1Embedding`` whose ``Settings.llm`` thinks and whose ``Settings.embed_model``
        embeds (other fields as keywords). Both must have been set: LlamaIndex's own default
        (OpenAI) is not taken silently."""
        from llama_index.core import Settings

        missing = [name for name, value in (("Settings.llm", Settings._llm), ("Settings.embed_model", Settings._embed_model)) if value is None]
        if missing:
            raise ModelLoadError(f"{' and '.join(missing)} not set: set {'them' if len(missing) > 1 else 'it'} first (LlamaIndex would default to OpenAI)")
        return cls(llm=Settings.llm, embed_model=Settings.embed_model, **kwargs)

    @field_validator("aggregation")
    @classmethod
    def _check_aggregation(cls, value: str) -> str:
        return Aggregation.parse(value).value

    @classmethod
    def class_name(cls) -> str:
        return "O1Embedding"

    def to_config(self) -> EmbedderConfig:
        """The :class:`o1_retriever.EmbedderConfig` these fields describe."""
        return EmbedderConfig.from_object(self)

    @property
    def thinking_embedder(self) -> ThinkingEmbedder:
        """The core embedder (built from the fields on first use)."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = framework_embedder(self.to_config(), *self._models)
                    if self.thinking:  # a thinker that cannot think is refused before any work
                        self._embedder.check_thinker()
        return self._embedder

    def _think(self) -> bool:
        return self.thinking and self.thinking_embedder.thinker is not None

    def get_query_embedding_with_thoughts(self, query: str) -> tuple[Embedding, list[str]]:
        """The query vector and the thoughts that built it."""
        result = self.thinking_embedder.embed_query(query, thinking=self._think(), return_thoughts=True)
        return result.vector.tolist(), list(result.thoughts)

    def _get_query_embedding(self, query: str) -> Embedding:
        return self.thinking_embedder.embed_query(query, thinking=self._think()).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        # the k thoughts concurrently on the loop (an llm's achat / acomplete; a local model in a worker thread)
        return (await self.thinking_embedder.aembed_query(query, thinking=self._think())).tolist()

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: List[str]) -> List[Embedding]:
        if not texts:
            return []
        return self.thinking_embedder.embed_documents(texts).tolist()

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

    async def _aget_text_embeddings(self, texts: List[str]) -> List[Embedding]:
        if not texts:
            return []
        return (await self.thinking_embedder.aembed_documents(texts)).tolist()
