"""One source for the embedder's defaults (issue 18): ``EmbedderConfig`` holds them; the command
line's model options and the adapters' pydantic fields read theirs from
``EmbedderConfig.option_defaults()``. A field that stops reading it and drifts fails here, naming
the field. No model loads."""

from __future__ import annotations

import inspect

import pytest

from o1_retriever import EmbedderConfig


def _field_defaults(model_class) -> dict:
    """Pydantic fields' defaults (a default factory counts as its value)."""
    fields = model_class.model_fields
    return {name: (f.default_factory() if f.default_factory is not None else f.default) for name, f in fields.items()}


def test_the_command_line_model_options_default_to_the_config():
    from o1_retriever.cli.app import _MODEL_OPTIONS

    defaults = EmbedderConfig.option_defaults()
    options = {p.name: p.default for p in _MODEL_OPTIONS}
    assert set(options) <= set(EmbedderConfig.option_names())
    drift = {name: (value, defaults[name]) for name, value in options.items() if value != defaults[name]}
    assert not drift, f"CLI option defaults differ from EmbedderConfig (option: (cli, config)): {drift}"


def test_option_defaults_are_what_an_empty_config_holds():
    config = EmbedderConfig()
    defaults = EmbedderConfig.option_defaults()
    assert set(defaults) == set(EmbedderConfig.option_names())
    assert EmbedderConfig.from_options(**defaults) == config


@pytest.mark.parametrize("adapter", ["langchain_o1.O1Embeddings", "llama_index.embeddings.o1.O1Embedding"])
def test_adapter_fields_default_to_the_config(adapter):
    module, _, name = adapter.rpartition(".")
    model_class = getattr(__import__(module, fromlist=[name]), name)
    defaults = EmbedderConfig.option_defaults()
    fields = _field_defaults(model_class)
    shared = set(fields) & set(defaults)
    assert {"thinker", "encoder", "thoughts", "aggregation", "prompt", "max_new_tokens", "temperature", "seed", "cache", "cache_max_rows"} <= shared
    drift = {n: (fields[n], defaults[n]) for n in sorted(shared) if fields[n] != defaults[n]}
    assert not drift, f"{adapter} field defaults differ from EmbedderConfig (field: (adapter, config)); take them from EmbedderConfig: {drift}"
    # and the fields build the default config
    assert inspect.isclass(model_class)
