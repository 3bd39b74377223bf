"""The one module that uses llama-cpp-python's private parts (the llama.cpp thinker's decoding).

:class:`~o1_retriever.thinkers.llamacpp.LlamaCppThinker` decodes the samples of a query
together: a second llama.cpp context on the weights a ``Llama`` already loaded, with one
sequence per sample, a batch written token by token (each token in its own sequence, at its own
position), and one sampler chain per sample. llama-cpp-python's public ``Llama`` class offers
none of that; its ``llama_cpp._internals`` module does (``LlamaContext``, ``LlamaBatch``,
``LlamaSampler``), on the ``LlamaModel`` a ``Llama`` keeps as ``Llama._model``. This module
wraps them in :class:`Sequences` (the context, its batch, its vocabulary), :func:`new_sampler`
and :func:`token_text`; everything else the thinker calls is public (``Llama``,
``llama_context_default_params``, ``Llama.context_params``, the chat formatter).

Tested with llama-cpp-python 0.3 (:data:`LLAMA_CPP_RANGE`, the range ``pyproject.toml``
declares; ``tests/test_dependencies.py`` checks that the two agree and that the installed
version is inside, and CI installs it so that ``tests/test_llamacpp.py`` runs). A version
without the parts used here is refused by :func:`check_llama_cpp` with a
:class:`~o1_retriever.errors.DependencyError` naming the version and the range, instead of an
``AttributeError`` from inside a generation.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from o1_retriever.errors import DependencyError
from o1_retriever.thinkers.base import SamplingConfig

#: the llama-cpp-python versions this module is known to work with (as pyproject.toml declares
#: them; tests/test_dependencies.py checks the two agree and that the installed version is inside)
LLAMA_CPP_RANGE = ">=0.3,<0.4"

#: a portable llama.cpp build without AMX (x86-64 with AVX2; .ci/run builds this way, and the
#: FAQ gives it to users whose llama.cpp crashes)
NO_AMX_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

#: what this module calls on each class of ``llama_cpp._internals``
_USED = {
    "LlamaModel": ("token_get_text",),
    "LlamaContext": ("decode", "kv_cache_seq_rm", "kv_cache_seq_cp"),
    "LlamaBatch": ("reset", "add_sequence"),
    "LlamaSampler": ("add_temp", "add_top_p", "add_dist", "add_greedy", "sample"),
}


def _refuse(missing: str) -> DependencyError:
    import llama_cpp

    version = getattr(llama_cpp, "__version__", "(unknown version)")
    return DependencyError(
        f"llama-cpp-python {version} has no {missing}, which the llama.cpp thinker uses to decode a query's "
        f"thoughts together: install llama-cpp-python{LLAMA_CPP_RANGE}"
    )


def check_llama_cpp() -> None:
    """Raise :class:`DependencyError` unless the installed llama-cpp-python has every private
    part this module uses (``llama_cpp`` itself must import; its absence is the caller's error)."""
    _internals()


def _internals() -> Any:
    """``llama_cpp._internals``, checked (a few attribute look-ups: cheap next to decoding)."""
    import llama_cpp  # noqa: F401 - not installed: ImportError, the caller says how to install it

    try:
        from llama_cpp import _internals as internals
    except ImportError:
        raise _refuse("llama_cpp._internals") from None
    missing: list[str] = []
    for name, methods in _USED.items():
        owner = getattr(internals, name, None)
        if owner is None:
            missing.append(f"llama_cpp._internals.{name}")
        else:
            missing += [f"llama_cpp._internals.{name}.{m}" for m in methods if not callable(getattr(owner, m, None))]
    if missing:
        raise _refuse(", ".join(missing))
    return internals


def amx_build() -> bool:
    """Whether the installed llama.cpp runs matrix products on Intel AMX tiles (a build with
    ``-march=native`` on a Sapphire Rapids or newer Xeon, llama-cpp-python's default there)."""
    import llama_cpp

    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode("utf-8", "replace")


@contextmanager
def plain_cpu_weights() -> Iterator[None]:
    """While active, a ``Llama`` being built keeps its weights in plain CPU buffers (llama.cpp's
    ``use_extra_bufts`` off: no AMX or repacked copies).

    Why: on AMX builds llama.cpp's AMX matrix product kills the process with a segmentation
    fault on the first evaluation (seen with SmolLM2's GGUF and llama-cpp-python 0.3.36 on a
    Xeon with AMX; llama.cpp issue 20824, closed without a fix). ``Llama()`` takes no parameter
    for it, so the default model parameters it starts from are wrapped for the duration; the
    caller holds the load lock, and another thread's model loaded meanwhile only loses the
    faster layout. A version without the field is refused with the way out."""
    import llama_cpp
    import llama_cpp.llama_cpp as raw

    original = raw.llama_model_default_params
    if not hasattr(original(), "use_extra_bufts"):
        raise DependencyError(
            "this llama.cpp build uses Intel AMX, whose kernels crash llama.cpp on this CPU, and its llama-cpp-python "
            f"({getattr(llama_cpp, '__version__', '?')}) cannot turn them off: rebuild it without AMX, "
            f'CMAKE_ARGS="{NO_AMX_CMAKE_ARGS}" pip install --force-reinstall --no-deps --no-cache-dir "llama-cpp-python{LLAMA_CPP_RANGE}"'
        )

    def plain() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    raw.llama_model_default_params = plain
    try:
        yield
    finally:
        raw.llama_model_default_params = original


def _model(llm: Any) -> Any:
    """The ``LlamaModel`` (the loaded weights) a ``Llama`` keeps as ``_model``."""
    model = getattr(llm, "_model", None)
    if model is None or not hasattr(model, "model"):
        raise _refuse("Llama._model (the loaded model)")
    return model


def token_text(llm: Any, token_id: int) -> str:
    """The text of one token id ("" for -1, a model without that token), as the chat template sees it."""
    _internals()
    return _model(llm).token_get_text(token_id) if token_id != -1 else ""


class Sequences:
    """A second llama.cpp context on the weights ``llm`` loaded, holding ``n_seq`` sequences in
    one unified KV cache, with a batch of up to ``params.n_ctx`` tokens (``params``: a
    ``llama_cpp.llama_context_params``). Raises ``ValueError`` when llama.cpp cannot create the
    context; :meth:`prefill` and :meth:`decode` raise ``RuntimeError`` when ``llama_decode``
    fails (no free KV cells, ...)."""

    def __init__(self, llm: Any, params: Any, n_seq: int) -> None:
        import llama_cpp

        internals = _internals()
        model = _model(llm)
        self.n_seq = n_seq
        self._ctx = internals.LlamaContext(model=model, params=params, verbose=False)
        self._batch = internals.LlamaBatch(n_tokens=params.n_ctx, embd=0, n_seq_max=1, verbose=False)
        if not hasattr(self._batch, "batch"):
            raise _refuse("LlamaBatch.batch (the llama_batch it wraps)")
        self._vocab = llama_cpp.llama_model_get_vocab(model.model)

    def forget(self, seq: int) -> None:
        """Drop every KV cell of sequence ``seq``."""
        self._ctx.kv_cache_seq_rm(seq, -1, -1)

    def copy(self, source: int, target: int, start: int = -1, end: int = -1) -> None:
        """Share the KV cells of ``source`` at positions [start, end) with ``target`` (-1: no bound)."""
        self._ctx.kv_cache_seq_cp(source, target, start, end)

    def prefill(self, tokens: Sequence[int], seq: int) -> None:
        """Evaluate ``tokens`` from position 0 in sequence ``seq``, logits for the last one only."""
        self._batch.reset()
        self._batch.add_sequence(tokens, seq, False)
        self._ctx.decode(self._batch)

    def decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """Evaluate ``entries`` in one batch: (token, position, sequence, whether its logits are
        wanted) each; the logits of entry ``j`` are then at index ``j``."""
        raw = self._batch.batch
        raw.n_tokens = len(entries)
        for j, (token, position, seq, logits) in enumerate(entries):
            raw.token[j], raw.pos[j], raw.n_seq_id[j], raw.logits[j] = token, position, 1, logits
            raw.seq_id[j][0] = seq
        self._ctx.decode(self._batch)

    def sample(self, sampler: Any, index: int) -> int:
        """A token drawn by ``sampler`` (:func:`new_sampler`) from the logits at batch ``index``."""
        return sampler.sample(self._ctx, index)

    def is_end(self, token: int) -> bool:
        """Whether ``token`` ends a generation (end of sequence, end of turn)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))


def new_sampler(sampling: SamplingConfig, seed: int) -> Any:
    """A sampler chain drawing as ``sampling`` says with ``seed``: temperature, then nucleus,
    then the draw (the transformers backend's order); greedy at temperature 0. Its
    ``sample(context, index)`` draws from the logits of a batch position."""
    sampler = _internals().LlamaSampler()
    if sampling.temperature > 0:
        sampler.add_temp(sampling.temperature)
        sampler.add_top_p(sampling.top_p, 1)
        sampler.add_dist(seed)
    else:
        sampler.add_greedy()
    return sampler
