"""Build thinkers and encoders from the model specs of :class:`EmbedderConfig`."""

from __future__ import annotations

from o1_retriever.config import EmbedderConfig
from o1_retriever.encoders.base import Encoder
from o1_retriever.errors import ModelLoadError
from o1_retriever.prompts import PROMPT_NAMES, ThoughtPrompt, named_prompt
from o1_retriever.thinkers.base import Thinker


def thought_prompt(config: EmbedderConfig) -> ThoughtPrompt | None:
    """The prompt ``config.prompt`` names; ``None`` for ``auto`` (the thinker chooses by its model)."""
    if config.prompt not in PROMPT_NAMES:
        raise ModelLoadError(f"unknown prompt {config.prompt!r}; choose one of {', '.join(PROMPT_NAMES)}")
    return named_prompt(config.prompt)


def build_models(config: EmbedderConfig) -> tuple[Thinker | None, Encoder]:
    """(thinker, encoder) for a config; a unified model plays both roles with one loaded LM."""
    if config.model:
        from o1_retriever.unified import UnifiedModel

        unified = UnifiedModel.load(config.model, device=config.device)
        return unified.thinker, unified.encoder
    return build_thinker(config), build_encoder(config)


def build_thinker(config: EmbedderConfig, *, prompt: ThoughtPrompt | None = None, max_query_tokens: int | None = None) -> Thinker | None:
    """The thinker a spec names. ``prompt`` overrides ``config.prompt`` and ``max_query_tokens``
    the backend's limit (thought synthesis feeds few-shot prompts as the "query")."""
    spec = config.thinker
    if spec in ("", "none"):
        return None
    prompt = prompt or thought_prompt(config)
    limit = {"max_query_tokens": max_query_tokens} if max_query_tokens else {}
    if spec.startswith(("http://", "https://")):
        from o1_retriever.thinkers.openai import OpenAIThinker

        if not config.thinker_model:
            raise ModelLoadError("an OpenAI-compatible thinker URL needs --thinker-model (the model's name on that server)")
        return OpenAIThinker(spec, config.thinker_model, prompt=prompt, api_key_env=config.thinker_api_key_env, timeout=config.thinker_timeout)
    if spec.startswith("llamacpp:"):
        from o1_retriever.thinkers.llamacpp import LlamaCppThinker

        return LlamaCppThinker(spec.removeprefix("llamacpp:"), prompt=prompt, n_threads=config.thinker_threads, **limit)
    from o1_retriever.thinkers.transformers import TransformersThinker

    return TransformersThinker(spec, prompt=prompt, device=config.device, dtype=config.thinker_dtype, **limit)


def build_encoder(config: EmbedderConfig) -> Encoder:
    spec = config.encoder
    if spec.startswith("last-token:"):
        from o1_retriever.encoders.last_token import LastTokenEncoder

        return LastTokenEncoder(spec.removeprefix("last-token:"), device=config.device)
    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder(spec, device=config.device)
