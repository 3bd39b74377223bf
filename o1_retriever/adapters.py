"""What the framework adapters (LangChain, LlamaIndex) share, without importing a framework: the
name a framework model is known by (thought cache key, collection fingerprint), the concurrency
limit its async calls share, and the one-line reason of its failures."""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence

import numpy as np

from o1_retriever.encoders.base import Encoder, normalize
from o1_retriever.errors import ArgumentError, ModelLoadError, O1RetrieverError, ThinkerError, ThinkerUnavailableError

#: attributes that name where a model is served, in the spellings of the common integrations
#: (langchain-openai, langchain-ollama, langchain-anthropic, LlamaIndex's OpenAI-like classes)
BASE_URL_ATTRIBUTES = ("openai_api_base", "base_url", "api_base", "anthropic_api_url", "azure_endpoint", "endpoint_url", "endpoint")
MODEL_ATTRIBUTES = ("model_name", "model", "model_id", "deployment_name", "deployment")
TEMPERATURE_ATTRIBUTES = ("temperature",)
TOKEN_LIMIT_ATTRIBUTES = ("max_tokens", "max_completion_tokens", "num_predict", "max_new_tokens", "max_output_tokens")


def first_attribute(obj: Any, names: Iterable[str]) -> Any:
    """The value of the first of ``names`` that ``obj`` has and that is set (not None, not "")."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None and value != "" and not callable(value):
            return value
    return None


def model_identity(framework: str, model: Any, params: Mapping[str, Any], *, role: str, hashed: Mapping[str, Any] | None = None) -> str:
    """The stable name of a framework ``model``: its class and identifying ``params`` (model
    name, base URL, temperature, token limit; unset ones left out), and with ``hashed`` a digest
    of further parameters that decide its output. A model whose name cannot be read is refused:
    a guessed identity could share cache rows or collections with another model.

    Example::

        >>> class ChatExample: ...
        >>> model_identity("langchain", ChatExample(), {"model": "qwen3:8b", "temperature": 0.7}, role="thinker")
        "langchain:ChatExample(model='qwen3:8b', temperature=0.7)"
    """
    cls = type(model)
    if not params.get("model"):
        flag = "thinker_id" if role == "thinker" else "encoder_id"
        raise ModelLoadError(
            f"cannot tell which model this {cls.__name__} is (no model name to read): pass {flag}='a stable name' "
            f"that changes whenever the model or its settings do (it keys the thought cache and the collection fingerprint)"
        )
    shown = ", ".join(f"{k}={_plain(v)!r}" for k, v in params.items() if v is not None and v != "" and v != {})
    identity = f"{framework}:{cls.__name__}({shown})"
    extra = {k: _plain(v) for k, v in sorted((hashed or {}).items()) if k not in params}
    if extra:
        digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode()).hexdigest()[:12]
        identity += f"#{digest}"
    return identity


def scalar_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-like scalar entries of a framework's identifying parameters (clients, callbacks
    and secrets are objects and stay out)."""
    secret = ("key", "secret", "password", "token", "auth", "header")
    return {
        k: v for k, v in params.items()
        if isinstance(v, (str, int, float, bool)) and not (any(s in k.lower() for s in secret) and "max" not in k.lower())
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return str(value)


# -- failures ------------------------------------------------------------------------------------
#: HTTP statuses after which no query can succeed (credentials, permission, unknown model)
_UNAVAILABLE_STATUS = {401, 403, 404}


def thinker_failure(identity: str, exc: BaseException) -> ThinkerError:
    """The one-line error for a framework model that failed: a
    :class:`~o1_retriever.errors.ThinkerUnavailableError` when no query can succeed (refused
    credentials, unknown model), else a :class:`~o1_retriever.errors.ThinkerError`, which the
    embedder turns into its fallback (a server down, a rate limit, a timeout may heal)."""
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    kind = ThinkerUnavailableError if status in _UNAVAILABLE_STATUS else ThinkerError
    return kind(f"{identity} failed: {one_line(exc)}")


def encoder_failure(identity: str, exc: BaseException) -> O1RetrieverError:
    """The one-line error for a framework embedding model that failed (an error of ours passes)."""
    return exc if isinstance(exc, O1RetrieverError) else O1RetrieverError(f"{identity} failed to embed: {one_line(exc)}")


def checked_vectors(identity: str, vectors: Sequence[Any], *, expected: int | None = None, dimension: int | None = None) -> np.ndarray:
    """A framework model's embeddings as the core's encoders return them: float32 rows, L2-
    normalised, one per text, all of one dimension; anything else is a clear error, never a
    partial or ragged result."""
    if expected is not None and len(vectors) != expected:
        raise O1RetrieverError(f"{identity} returned {len(vectors)} vectors for {expected} texts")
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except ValueError:
        raise O1RetrieverError(f"{identity} returned vectors of different lengths") from None
    if array.ndim != 2 or array.shape[1] == 0 or (dimension is not None and array.shape[1] != dimension):
        raise O1RetrieverError(f"{identity} returned vectors of shape {array.shape}, expected (n, {dimension or 'd'})")
    return normalize(array)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (framework errors often carry a body or a traceback)."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# -- concurrency ---------------------------------------------------------------------------------
class SharedLimit:
    """At most ``limit`` requests to one model in flight, over every coroutine of an event loop
    that uses this model: the k thoughts of one query and many queries under ``asyncio.gather``
    share it. :meth:`hold` waits for one free place, takes the others free at that moment (up
    to the requests asked for), and yields how many it holds: a caller that sends a batch with
    one call (a framework's ``abatch``) passes that number on as the batch's own concurrency.
    Each event loop has its own places (asyncio primitives belong to one loop)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.limit = limit
        self._per_loop: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    @asynccontextmanager
    async def hold(self, requests: int = 1) -> AsyncIterator[int]:
        loop = asyncio.get_running_loop()
        places = self._per_loop.get(loop)
        if places is None:
            places = self._per_loop[loop] = asyncio.Semaphore(self.limit)
        held = 0
        try:
            await places.acquire()
            held = 1
            while held < requests and not places.locked():  # free now: taken without waiting
                await places.acquire()
                held += 1
            yield held
        finally:
            for _ in range(held):
                places.release()


# -- the adapters' fields ------------------------------------------------------------------------
#: the string fields of an adapter that describe a thinker / an encoder by name (one of each
#: model may be given: as an object or by these fields, never both)
THINKER_FIELDS = ("thinker", "thinker_model", "thinker_dtype", "thinker_threads", "max_new_tokens", "temperature", "seed", "model")
ENCODER_FIELDS = ("encoder", "model")


def check_model_fields(fields_set: Iterable[str], *, thinker_object: str, encoder_object: str, given: Mapping[str, Any]) -> None:
    """Refuse an adapter configuration that describes one model twice: a framework model object
    (``given[thinker_object]`` / ``given[encoder_object]``) with fields that name a model by
    string or set its generation (those are the model object's own settings), an identity
    (``thinker_id`` / ``encoder_id``) without the object it names, or objects with a ready
    ``embedder``."""
    fields_set = set(fields_set)
    for obj, names, id_field in ((thinker_object, THINKER_FIELDS, "thinker_id"), (encoder_object, ENCODER_FIELDS, "encoder_id")):
        if given.get(obj) is not None:
            clash = [n for n in names if n in fields_set]
            if clash:
                raise ArgumentError(
                    f"{obj}= gives the model as an object; {', '.join(clash)}= describe{'s' if len(clash) == 1 else ''} it again: "
                    f"give one or the other (set temperature and token limit on the {obj} object itself)"
                )
            if given.get("embedder") is not None:
                raise ArgumentError(f"give {obj}= or a ready embedder=, not both")
        elif given.get(id_field):
            raise ArgumentError(f"{id_field}= names the {obj}= object; there is none")


def framework_embedder(config: Any, thinker: Any = None, encoder: Any = None) -> Any:
    """The :class:`~o1_retriever.ThinkingEmbedder` ``config`` describes, with a framework
    ``thinker`` and/or ``encoder`` (already wrapped in the core protocols) in place of the models
    its specs name; the others are built from the specs."""
    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.factory import build_encoder, build_thinker

    if thinker is None and encoder is None:
        return ThinkingEmbedder.from_config(config)
    models = (thinker if thinker is not None else build_thinker(config), encoder if encoder is not None else build_encoder(config))
    return ThinkingEmbedder.from_config(config, models=models)


# -- encoders ------------------------------------------------------------------------------------
class FrameworkEncoder(Encoder):
    """What a framework's embedding model needs to serve as the core's
    :class:`~o1_retriever.encoders.base.Encoder`, written once for LangChain and LlamaIndex: the
    identity, a dimension read from one probe embedding on first need, query strings (query +
    thought) embedded one by one through the model's *query* side (its instruction prefix or input
    type applies), documents in batches, every vector checked and L2-normalised as the core's
    encoders return them, and any failure one line naming the model. A subclass says how to call
    its framework: :meth:`_embed_query`, :meth:`_aembed_query`, :meth:`_embed_documents`,
    :meth:`_aembed_documents`."""

    def __init__(self, identity: str) -> None:
        self._identity = identity
        self._dimension: int | None = None

    def _embed_query(self, text: str) -> Sequence[float]:
        raise NotImplementedError

    async def _aembed_query(self, text: str) -> Sequence[float]:
        raise NotImplementedError

    def _embed_documents(self, texts: list[str], show_progress: bool) -> Sequence[Sequence[float]]:
        raise NotImplementedError

    async def _aembed_documents(self, texts: list[str]) -> Sequence[Sequence[float]]:
        raise NotImplementedError

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = self._checked([self._call(self._embed_query, "dimension probe")]).shape[1]
        return self._dimension

    def query_text(self, query: str | None, thought: str | None) -> str:
        return " ".join(p for p in (query, thought) if p)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._checked([self._call(self._embed_query, t) for t in texts])

    async def aencode_queries(self, texts: list[str]) -> np.ndarray:
        try:  # a query's strings concurrently
            vectors = await asyncio.gather(*(self._aembed_query(t) for t in texts))
        except Exception as exc:
            raise encoder_failure(self._identity, exc) from None
        return self._checked(list(vectors))

    def encode_documents(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return self._checked(list(self._call(lambda part: self._embed_documents(part, show_progress), texts)), len(texts))

    async def aencode_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        try:
            vectors = await self._aembed_documents(texts)
        except Exception as exc:
            raise encoder_failure(self._identity, exc) from None
        return self._checked(list(vectors), len(texts))

    def _call(self, method: Any, arg: Any) -> Any:
        try:
            return method(arg)
        except Exception as exc:
            raise encoder_failure(self._identity, exc) from None

    def _checked(self, vectors: list[Any], expected: int | None = None) -> np.ndarray:
        return checked_vectors(self._identity, vectors, expected=expected, dimension=self._dimension)
