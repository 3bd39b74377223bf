"""LangChain models as o1-retriever's thinker and encoder: any chat model, LLM or Runnable thinks,
any ``Embeddings`` embeds, behind the core's :class:`~o1_retriever.thinkers.base.Thinker` and
:class:`~o1_retriever.encoders.base.Encoder` protocols (so ``ChromaIndex``, ``eval``, ``rag-eval``
and the gate use them through the Python API as they use the built-in models)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel, BaseLanguageModel, BaseLLM
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig

from o1_retriever.adapters import (
    BASE_URL_ATTRIBUTES,
    FrameworkEncoder,
    MODEL_ATTRIBUTES,
    TEMPERATURE_ATTRIBUTES,
    TOKEN_LIMIT_ATTRIBUTES,
    SharedLimit,
    first_attribute,
    model_identity,
    scalar_params,
    thinker_failure,
)
from o1_retriever.errors import ArgumentError, ModelLoadError, O1RetrieverError, ThinkerError, ThinkerUnavailableError
from o1_retriever.evaluation.rag import Reader
from o1_retriever.prompts import ThoughtPrompt, prompt_for_model
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought, cut_at_stop

#: tag on every thinking call, so a tracer (LangSmith, Langfuse, a callback handler) can tell them apart
THINKING_TAG = "o1-thinking"
_DOCUMENT_BATCH = 256  # documents per embed_documents call when a progress bar is shown


def model_behind(runnable: Any) -> Any:
    """The model inside ``llm.bind(...)``, ``llm.with_config(...)``, ``llm.with_retry()``: the
    object whose class and parameters name it."""
    while isinstance(runnable, RunnableBinding) or (type(runnable).__name__ == "RunnableRetry" and hasattr(runnable, "bound")):
        runnable = runnable.bound
    return runnable


def langchain_identity(runnable: Any, *, role: str) -> str:
    """The identity of a LangChain model: class, model name, base URL, temperature and token
    limit (LangSmith's standard ``ls_*`` parameters where the model declares them), and for a
    thinker a digest of its other identifying parameters (top_p, seed, reasoning effort, ...)
    and of the arguments bound to it (``llm.bind(...)``)."""
    model = model_behind(runnable)
    bound = getattr(runnable, "kwargs", None) if runnable is not model else None
    ls: dict[str, Any] = {}
    if isinstance(model, BaseLanguageModel):
        try:
            ls = model._get_ls_params()  # noqa: SLF001 - LangChain's standard description of a model
        except Exception:  # a model whose ls params need a call argument
            ls = {}
    params = {
        "model": ls.get("ls_model_name") or first_attribute(model, MODEL_ATTRIBUTES),
        "base_url": first_attribute(model, BASE_URL_ATTRIBUTES),
        "temperature": ls.get("ls_temperature", first_attribute(model, TEMPERATURE_ATTRIBUTES)),
        "max_tokens": ls.get("ls_max_tokens", first_attribute(model, TOKEN_LIMIT_ATTRIBUTES)),
    }
    if role == "encoder":  # what else decides an embeddings object's vectors
        params |= {name: getattr(model, name, None) for name in ("dimensions", "encode_kwargs", "query_encode_kwargs", "query_instruction")}
    hashed = None
    if role == "thinker":
        hashed = scalar_params(getattr(model, "_identifying_params", {}) or {}) | ({"bound": bound} if bound else {})
    return model_identity("langchain", model, params, role=role, hashed=hashed)


class LangChainThinker(Thinker):
    """A LangChain chat model, LLM or Runnable writes the thoughts.

    The thoughts of every query are as many inputs of one ``llm.batch`` call (``abatch`` in
    :meth:`athink`), so the model's own batching, retries, rate limiter and callbacks apply;
    the run config in effect (a retriever's or chain's callbacks, tags, metadata) reaches the
    thinking calls, each tagged ``o1-thinking``. ``max_concurrency`` bounds the requests in
    flight, shared by all queries of an event loop (``asyncio.gather`` of many queries
    included). A chat model receives the thought prompt as a chat message; an LLM or a
    Runnable the rendered prompt string. Outputs go through
    :func:`~o1_retriever.thinkers.base.clean_thought` (``<think>`` tags, ``reasoning_content``,
    reasoning content blocks). Generation settings (temperature, token limit) are the model's
    own: configure them on the model (``ChatOpenAI(max_tokens=64, temperature=0.7)``); they are
    part of its identity. A query's samples differ only when the model samples (temperature > 0).

    Args:
        llm: a ``BaseChatModel``, a ``BaseLLM``, or any ``Runnable`` from a prompt string to text.
        prompt: the thought prompt (default: passage for chat models and Runnables, the
            completion form passage-raw for a text LLM).
        thinker_id: the identity to use (thought cache key) instead of the one read from the
            model; required for a model whose name cannot be read (a Runnable, a fake model).
        max_concurrency: requests in flight at most.
    """

    def __init__(self, llm: Any, prompt: Optional[ThoughtPrompt] = None, *, thinker_id: Optional[str] = None, max_concurrency: int = 8) -> None:
        if not isinstance(llm, Runnable):
            raise ArgumentError(f"llm must be a LangChain chat model, LLM or Runnable, got {type(llm).__name__}")
        self.llm = llm
        self.chat = isinstance(model_behind(llm), BaseChatModel)
        self._identity = thinker_id or langchain_identity(llm, role="thinker")
        self.prompt = prompt_for_model(prompt, has_chat_template=not isinstance(model_behind(llm), BaseLLM), model=self._identity)
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

    def _inputs(self, queries: list[str], thoughts: int) -> list[Any]:
        text = [self.prompt.render(q) for q in queries]
        return [[HumanMessage(t)] if self.chat else t for t in text for _ in range(thoughts)]

    def _config(self) -> RunnableConfig:
        # ensure_config merges this over the run config in effect (var_child_runnable_config):
        # the caller's callbacks stay, so a tracer sees these calls as children of its run
        return {"max_concurrency": self.max_concurrency, "tags": [THINKING_TAG], "metadata": {"o1_prompt": self.prompt.name}}

    def _kwargs(self) -> dict[str, Any]:
        return {"stop": list(self.prompt.stop)} if self.prompt.stop and isinstance(model_behind(self.llm), BaseLanguageModel) else {}

    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        try:
            outputs = self.llm.batch(self._inputs(queries, thoughts), config=self._config(), **self._kwargs())
        except O1RetrieverError:
            raise
        except Exception as exc:
            raise thinker_failure(self._identity, exc) from None
        return self._grouped(outputs, thoughts)

    async def athink(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        inputs = self._inputs(queries, thoughts)
        try:
            async with self._limit.hold(len(inputs)) as places:  # the places free now, shared with other queries
                outputs = await self.llm.abatch(inputs, config={**self._config(), "max_concurrency": places}, **self._kwargs())
        except O1RetrieverError:
            raise
        except Exception as exc:
            raise thinker_failure(self._identity, exc) from None
        return self._grouped(outputs, thoughts)

    def _grouped(self, outputs: Sequence[Any], thoughts: int) -> list[list[str]]:
        texts = [cut_at_stop(text, self.prompt.stop) if self.prompt.stop else text for text in map(self._thought, outputs)]
        return [texts[i : i + thoughts] for i in range(0, len(texts), thoughts)]

    def _thought(self, output: Any) -> str:
        if isinstance(output, str):
            return clean_thought(output)
        if isinstance(output, BaseMessage):
            return message_thought(output)
        raise ThinkerError(f"{self._identity} returned {type(output).__name__}, not text or a message")


def message_thought(message: BaseMessage) -> str:
    """The thought in a LangChain message: its text (a string, or the text blocks of a
    content-block list) through :func:`clean_thought`, with the reasoning a provider returned
    apart (reasoning / thinking blocks, ``reasoning_content`` in ``additional_kwargs``) used
    when the text holds no answer."""
    texts: list[str] = []
    reasoning: list[str] = []
    content = message.content
    for block in [content] if isinstance(content, str) else content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif isinstance(block, dict) and block.get("type") in ("reasoning", "thinking"):
            summary = " ".join(str(s.get("text") or "") for s in block.get("summary") or [] if isinstance(s, dict))
            reasoning.append(str(block.get("reasoning") or block.get("thinking") or summary))
    extra = message.additional_kwargs.get("reasoning_content") or message.additional_kwargs.get("reasoning")
    if isinstance(extra, str):
        reasoning.append(extra)
    return clean_thought("".join(texts), "\n".join(r for r in reasoning if r) or None)


class LangChainEncoder(FrameworkEncoder):
    """A LangChain ``Embeddings`` object as encoder. Query strings (query + thought) go through
    ``embed_query`` (a model's query side: instruction prefixes, input types), documents through
    ``embed_documents``; vectors are L2-normalised as the core's encoders are. The dimension is
    read from one probe embedding, on first need. Async calls use ``aembed_query`` (the strings
    of a query concurrently) and ``aembed_documents``.

    Args:
        embeddings: any ``langchain_core.embeddings.Embeddings``.
        encoder_id: the identity to use (collection fingerprint) instead of the one read from
            the object; required when no model name can be read from it.
    """

    def __init__(self, embeddings: Any, *, encoder_id: Optional[str] = None) -> None:
        if not isinstance(embeddings, Embeddings):
            raise ArgumentError(f"base_embeddings must be a LangChain Embeddings object, got {type(embeddings).__name__}")
        from langchain_o1.embeddings import O1Embeddings

        if isinstance(embeddings, O1Embeddings):
            raise ArgumentError("base_embeddings is an O1Embeddings: give the plain embeddings it should think for")
        self.embeddings = embeddings
        super().__init__(encoder_id or langchain_identity(embeddings, role="encoder"))

    def _embed_query(self, text: str) -> Any:
        return self.embeddings.embed_query(text)

    async def _aembed_query(self, text: str) -> Any:
        return await self.embeddings.aembed_query(text)

    def _embed_documents(self, texts: list[str], show_progress: bool) -> Any:
        if not show_progress:
            return self.embeddings.embed_documents(texts)
        from tqdm.auto import tqdm

        vectors: list[Any] = []  # in parts, so a bar can move
        with tqdm(total=len(texts), desc="embedding", unit="doc") as bar:
            for i in range(0, len(texts), _DOCUMENT_BATCH):
                part = texts[i : i + _DOCUMENT_BATCH]
                vectors.extend(self.embeddings.embed_documents(part))
                bar.update(len(part))
        return vectors

    async def _aembed_documents(self, texts: list[str]) -> Any:
        return await self.embeddings.aembed_documents(texts)


class LangChainReader(Reader):
    """A LangChain chat model or LLM as the reader of
    :func:`o1_retriever.evaluation.rag.evaluate_rag`: the same answer prompt and clean-up as the
    built-in reader, the questions of a batch through ``llm.batch``. Set the model's own
    answer length and temperature (0 for comparable runs)."""

    def __init__(self, llm: Any, *, batch_size: int = 8, max_passage_chars: int = 1000) -> None:
        if not isinstance(llm, Runnable):
            raise ArgumentError(f"the reader must be a LangChain chat model, LLM or Runnable, got {type(llm).__name__}")
        # max_new_tokens 0: the model's own limit applies
        super().__init__(backend=_LangChainChat(llm), max_new_tokens=0, batch_size=batch_size, max_passage_chars=max_passage_chars)


class _LangChainChat:
    """The ``chat(conversations, max_new_tokens)`` backend :class:`Reader` calls."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        try:
            self.name = langchain_identity(llm, role="reader")
        except ModelLoadError:
            self.name = type(llm).__name__

    def chat(self, conversations: list[list[dict[str, str]]], max_new_tokens: int, max_prompt_tokens: int = 0) -> list[str]:
        inputs = [[(m["role"], m["content"]) for m in c] for c in conversations]
        outputs = self.llm.batch(inputs, config={"tags": ["o1-reader"]})
        return [o if isinstance(o, str) else message_thought(o) for o in outputs]
