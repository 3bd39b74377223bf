"""LlamaIndex models as o1-retriever's thinker and encoder: any ``LLM`` thinks (``Settings.llm``,
``OpenAILike``, ``Ollama``, ``Anthropic``, ...), any ``BaseEmbedding`` embeds, behind the core's
:class:`~o1_retriever.thinkers.base.Thinker` and :class:`~o1_retriever.encoders.base.Encoder`
protocols (so ``ChromaIndex``, ``eval``, ``rag-eval`` and the gate use them through the Python API)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM

from o1_retriever.adapters import (
    BASE_URL_ATTRIBUTES,
    FrameworkEncoder,
    MODEL_ATTRIBUTES,
    TEMPERATURE_ATTRIBUTES,
    TOKEN_LIMIT_ATTRIBUTES,
    SharedLimit,
    first_attribute,
    model_identity,
    thinker_failure,
)
from o1_retriever.evaluation.rag import Reader
from o1_retriever.errors import ArgumentError, ModelLoadError, O1RetrieverError, ThinkerUnavailableError
from o1_retriever.prompts import ThoughtPrompt, prompt_for_model
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought, cut_at_stop


def llama_index_identity(model: Any, *, role: str) -> str:
    """The identity of a LlamaIndex LLM or embedding: class, model name, base URL, temperature,
    token limit (and for an embedding, its query instruction and dimensions)."""
    metadata = getattr(model, "metadata", None) if isinstance(model, LLM) else None
    name = first_attribute(model, MODEL_ATTRIBUTES)
    if not name and metadata is not None and getattr(metadata, "model_name", "unknown") != "unknown":
        name = metadata.model_name
    params = {
        "model": name,
        "base_url": first_attribute(model, BASE_URL_ATTRIBUTES),
        "temperature": first_attribute(model, TEMPERATURE_ATTRIBUTES),
        "max_tokens": first_attribute(model, TOKEN_LIMIT_ATTRIBUTES),
    }
    if role == "encoder":
        params |= {name: getattr(model, name, None) for name in ("query_instruction", "text_instruction", "dimensions", "normalize")}
    extra = {"top_p": getattr(model, "top_p", None), "additional_kwargs": getattr(model, "additional_kwargs", None)} if role == "thinker" else None
    return model_identity("llama-index", model, params, role=role, hashed={k: v for k, v in (extra or {}).items() if v})


class LlamaIndexThinker(Thinker):
    """A LlamaIndex ``LLM`` writes the thoughts: ``chat`` (a chat model, the thought prompt as a
    user message) or ``complete`` (a completion model, the rendered prompt), one call per thought;
    :meth:`athink` awaits ``achat`` / ``acomplete`` for all of them concurrently on the event
    loop. ``max_concurrency`` bounds the requests in flight, shared by all queries of a loop.
    Outputs go through :func:`~o1_retriever.thinkers.base.clean_thought` (``<think>`` tags,
    thinking blocks, ``reasoning_content``). Generation settings are the model's own
    (``OpenAILike(max_tokens=64, temperature=0.7)``) and part of its identity; a query's samples
    differ only when the model samples.

    Args:
        llm: any LlamaIndex ``LLM``.
        prompt: the thought prompt (default: passage for chat models, passage-raw for
            completion models).
        thinker_id: the identity to use (thought cache key) where none can be read.
        max_concurrency: requests in flight at most.
    """

    def __init__(self, llm: Any, prompt: Optional[ThoughtPrompt] = None, *, thinker_id: Optional[str] = None, max_concurrency: int = 8) -> None:
        if not isinstance(llm, LLM):
            raise ArgumentError(f"llm must be a LlamaIndex LLM, got {type(llm).__name__}")
        self.llm = llm
        self.chat = bool(llm.metadata.is_chat_model)
        self._identity = thinker_id or llama_index_identity(llm, role="thinker")
        self.prompt = prompt_for_model(prompt, has_chat_template=self.chat, model=self._identity)
        if self.chat and not self.prompt.chat:
            raise ThinkerUnavailableError(
                f"{self._identity} is a chat model: it cannot continue the completion prompt {self.prompt.name!r} as raw text "
                "(name a chat prompt, or name none)"
            )
        self.max_concurrency = max_concurrency
        self._limit = SharedLimit(max_concurrency)

    @property
    def identity(self) -> str:
        return self._identity

    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        prompts = [self.prompt.render(q) for q in queries for _ in range(thoughts)]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(prompts))) as pool:
            try:
                texts = list(pool.map(self._one, prompts))
            except O1RetrieverError:
                raise
            except Exception as exc:
                raise thinker_failure(self._identity, exc) from None
        return [texts[i : i + thoughts] for i in range(0, len(texts), thoughts)]

    async def athink(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        prompts = [self.prompt.render(q) for q in queries for _ in range(thoughts)]
        try:
            texts = await asyncio.gather(*(self._aone(p) for p in prompts))
        except O1RetrieverError:
            raise
        except Exception as exc:
            raise thinker_failure(self._identity, exc) from None
        return [texts[i : i + thoughts] for i in range(0, len(texts), thoughts)]

    def _one(self, text: str) -> str:
        if self.chat:
            return self._cleaned(self.llm.chat([ChatMessage(role=MessageRole.USER, content=text)]).message)
        return self._cleaned(self.llm.complete(text, formatted=True))

    async def _aone(self, text: str) -> str:
        async with self._limit.hold():
            if self.chat:
                return self._cleaned((await self.llm.achat([ChatMessage(role=MessageRole.USER, content=text)])).message)
            return self._cleaned(await self.llm.acomplete(text, formatted=True))

    def _cleaned(self, reply: Any) -> str:
        thought = reply_thought(reply)
        return clean_thought(cut_at_stop(thought, self.prompt.stop)) if self.prompt.stop else thought


def reply_thought(reply: Any) -> str:
    """The thought in a LlamaIndex ``ChatMessage`` or ``CompletionResponse``: its text through
    :func:`clean_thought`, with reasoning returned apart (thinking blocks,
    ``reasoning_content`` in ``additional_kwargs``) used when the text holds no answer."""
    reasoning = [str(b.content) for b in getattr(reply, "blocks", []) if getattr(b, "block_type", None) == "thinking" and b.content]
    extra = (getattr(reply, "additional_kwargs", None) or {}).get("reasoning_content") or (getattr(reply, "additional_kwargs", None) or {}).get("reasoning")
    if isinstance(extra, str):
        reasoning.append(extra)
    text = reply.content if isinstance(reply, ChatMessage) else getattr(reply, "text", None)
    return clean_thought(text or "", "\n".join(reasoning) or None)


class LlamaIndexEncoder(FrameworkEncoder):
    """A LlamaIndex ``BaseEmbedding`` as encoder: query strings (query + thought) through
    ``get_query_embedding`` (its query instruction applies), documents through
    ``get_text_embedding_batch``; vectors L2-normalised as the core's encoders are. Async calls
    use ``aget_query_embedding`` (a query's strings concurrently) and
    ``aget_text_embedding_batch``. The dimension is read from one probe embedding on first need.

    Args:
        embed_model: any LlamaIndex ``BaseEmbedding`` (not an ``O1Embedding``: it would think
            about its own thoughts).
        encoder_id: the identity to use (collection fingerprint) where none can be read.
    """

    def __init__(self, embed_model: Any, *, encoder_id: Optional[str] = None) -> None:
        if not isinstance(embed_model, BaseEmbedding):
            raise ArgumentError(f"embed_model must be a LlamaIndex BaseEmbedding, got {type(embed_model).__name__}")
        from llama_index.embeddings.o1.base import O1Embedding

        if isinstance(embed_model, O1Embedding):
            raise ArgumentError("embed_model is an O1Embedding: give the plain embedding model it should think for")
        self.embed_model = embed_model
        super().__init__(encoder_id or llama_index_identity(embed_model, role="encoder"))

    def _embed_query(self, text: str) -> Any:
        return self.embed_model.get_query_embedding(text)

    async def _aembed_query(self, text: str) -> Any:
        return await self.embed_model.aget_query_embedding(text)

    def _embed_documents(self, texts: list[str], show_progress: bool) -> Any:
        return self.embed_model.get_text_embedding_batch(texts, show_progress=show_progress)

    async def _aembed_documents(self, texts: list[str]) -> Any:
        return await self.embed_model.aget_text_embedding_batch(texts)


class LlamaIndexReader(Reader):
    """A LlamaIndex ``LLM`` as the reader of :func:`o1_retriever.evaluation.rag.evaluate_rag`:
    the built-in reader's answer prompt and clean-up, each question through ``llm.chat``. Set the
    model's own answer length and temperature (0 for comparable runs)."""

    def __init__(self, llm: Any, *, batch_size: int = 8, max_passage_chars: int = 1000) -> None:
        if not isinstance(llm, LLM):
            raise ArgumentError(f"the reader must be a LlamaIndex LLM, got {type(llm).__name__}")
        # max_new_tokens 0: the model's own limit applies
        super().__init__(backend=_LlamaIndexChat(llm), max_new_tokens=0, batch_size=batch_size, max_passage_chars=max_passage_chars)


class _LlamaIndexChat:
    """The ``chat(conversations, max_new_tokens)`` backend :class:`Reader` calls."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        try:
            self.name = llama_index_identity(llm, role="reader")
        except ModelLoadError:
            self.name = type(llm).__name__

    def chat(self, conversations: list[list[dict[str, str]]], max_new_tokens: int, max_prompt_tokens: int = 0) -> list[str]:
        return [reply_thought(self.llm.chat([ChatMessage(role=m["role"], content=m["content"]) for m in c]).message) for c in conversations]
