"""EmbedderConfig: every setting that decides how a ThinkingEmbedder is built.

Its own module so that the embedder, the model factory, the command line and the framework
adapters can all import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o1_retriever.cache import DEFAULT_MAX_ROWS
from o1_retriever.thinkers.base import SamplingConfig


#: Thoughts per query by default (with :class:`SamplingConfig`'s 32 tokens each). One 32-token
#: thought scored as well as three 64-token ones on SciFact *train* claims (0.670 vs 0.668
#: nDCG@10 dense, 0.730 vs 0.722 hybrid) at about a sixth of the generation; 3 x 64 was the
#: default before 0.2 (docs/performance.md, "Defaults chosen on the frontier").
DEFAULT_THOUGHTS = 1


def means_no_cache(cache: object) -> bool:
    """How every entry point (``--cache``, :class:`EmbedderConfig`, :class:`ThinkingEmbedder`)
    spells "no thought cache": ``None``, ``""`` or ``"none"``, never a file called ``none``."""
    return cache is None or (isinstance(cache, str) and cache in ("", "none"))


@dataclass
class EmbedderConfig:
    """Everything that decides how an embedder is built; the CLI, notebooks and adapters
    all build their embedder from one of these.

    Model specs:
        thinker: ``"smollm2"`` (offline default), a Hugging Face id or folder, ``"llamacpp:PATH"``
            (a GGUF; ``llamacpp:smollm2`` for the offline one), or an ``http(s)://.../v1`` URL of
            an OpenAI-compatible server with ``thinker_model`` naming the model there.
        encoder: ``"minilm"`` (offline default), any sentence-transformers id or folder, or
            ``"last-token:SPEC"`` for last-token pooling of a causal LM.
        model: a unified O1 model (thinks and embeds); replaces thinker and encoder.
    """

    thinker: str = "smollm2"
    encoder: str = "minilm"
    model: str | None = None
    thinker_model: str | None = None
    thinker_api_key_env: str = "OPENAI_API_KEY"
    thinker_timeout: float = 60.0  # seconds per request to an OpenAI-compatible thinker
    thinker_dtype: str = "auto"  # transformers thinkers: auto | float32 | bfloat16 | float16
    thinker_threads: int | None = None  # llama.cpp thinkers: CPU threads (None: llama-cpp-python's default)
    prompt: str = "auto"  # a name in prompts.PROMPT_NAMES; auto: passage, or passage-raw for a model without chat template
    aggregation: str = "o1+query"
    thoughts: int = DEFAULT_THOUGHTS
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    cache: str | None = "default"
    cache_max_rows: int = DEFAULT_MAX_ROWS  # thought cache bound, least recently used rows go first
    device: str | None = None
    strict: bool = False

    @classmethod
    def from_options(cls, **options: Any) -> "EmbedderConfig":
        """Build from flat options, as command lines and framework adapters hold them:
        ``max_new_tokens``, ``temperature``, ``top_p`` and ``seed`` go into ``sampling``."""
        names = ("max_new_tokens", "temperature", "top_p", "seed")
        sampling = {n: options.pop(n) for n in names if n in options}
        return cls(sampling=SamplingConfig(**sampling), **options)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The flat option names :meth:`from_options` takes (every field, with ``sampling``
        spread into its own fields)."""
        from dataclasses import fields

        return tuple(f.name for f in fields(cls) if f.name != "sampling") + ("max_new_tokens", "temperature", "top_p", "seed")

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """Each flat option's default (:meth:`option_names`): the one place the command line's
        model options and the framework adapters' fields take their defaults from."""
        from dataclasses import asdict

        default = cls()
        return {name: getattr(default, name) for name in cls.option_names() if hasattr(default, name)} | asdict(default.sampling)

    @classmethod
    def from_object(cls, source: Any) -> "EmbedderConfig":
        """Build from the attributes of ``source`` named like options (a framework adapter's
        fields): options ``source`` does not have keep their defaults."""
        return cls.from_options(**{name: getattr(source, name) for name in cls.option_names() if hasattr(source, name)})

    def cache_path(self) -> Path | None:
        if means_no_cache(self.cache):
            return None
        if self.cache == "default":
            from o1_retriever.models import home

            return home() / "thoughts.sqlite"
        return Path(self.cache)
