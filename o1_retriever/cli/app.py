"""What every command of the ``o1-retriever`` command line shares: the typer app, the consoles,
the :func:`command` decorator with the model options, the collection options and
:func:`open_index`. Command modules import from here and never from each other."""


import functools
import inspect
import logging
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from o1_retriever.config import EmbedderConfig
from o1_retriever.errors import O1RetrieverError
from o1_retriever.prompts import PROMPT_NAMES

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Thinking before retrieval (O1 Embedder) on Chroma.")
out = Console()
err = Console(stderr=True, soft_wrap=True)

# -- options shared by every command that builds an embedder ------------------------------------
_MODEL_PANEL = "Models"
_DEFAULT = EmbedderConfig.option_defaults()  # every default comes from EmbedderConfig, none is written here
_MODEL_OPTIONS: list[inspect.Parameter] = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULT[name], annotation=annotation)
    for name, annotation in [
        ("thinker", Annotated[str, typer.Option(help="Thinker: 'smollm2', a HF id/folder, 'llamacpp:GGUF', or an OpenAI-compatible http(s)://.../v1 URL.", rich_help_panel=_MODEL_PANEL)]),
        ("thinker_model", Annotated[Optional[str], typer.Option(help="Model name on an OpenAI-compatible thinker server.", rich_help_panel=_MODEL_PANEL)]),
        ("thinker_timeout", Annotated[float, typer.Option(min=0.1, help="Seconds per request to an OpenAI-compatible thinker (then retries, then fallback).", rich_help_panel=_MODEL_PANEL)]),
        ("thinker_dtype", Annotated[str, typer.Option(help="Precision of a transformers thinker: auto (bfloat16 where the CPU/GPU computes it natively, else float32) | float32 | bfloat16 | float16.", rich_help_panel=_MODEL_PANEL)]),
        ("thinker_threads", Annotated[Optional[int], typer.Option(min=1, help="CPU threads of a llama.cpp thinker (default: llama-cpp-python's choice); 1 avoids spin-waits on a busy CPU.", rich_help_panel=_MODEL_PANEL)]),
        ("encoder", Annotated[str, typer.Option(help="Encoder: 'minilm', a sentence-transformers id/folder, or 'last-token:SPEC'.", rich_help_panel=_MODEL_PANEL)]),
        ("model", Annotated[Optional[str], typer.Option(help="A unified O1 model (thinks and embeds); replaces --thinker/--encoder.", rich_help_panel=_MODEL_PANEL)]),
        ("aggregation", Annotated[str, typer.Option(help="o1 | o1+query | hyde.", rich_help_panel=_MODEL_PANEL)]),
        ("thoughts", Annotated[int, typer.Option(min=1, help="Thoughts per query (k).", rich_help_panel=_MODEL_PANEL)]),
        ("prompt", Annotated[str, typer.Option(help="Thought prompt: " + " | ".join(PROMPT_NAMES) + ". auto: passage, or passage-raw (a completion prompt; /v1/completions on a server) for a model without a chat template.", rich_help_panel=_MODEL_PANEL)]),
        ("max_new_tokens", Annotated[int, typer.Option(min=1, help="Tokens per thought.", rich_help_panel=_MODEL_PANEL)]),
        ("temperature", Annotated[float, typer.Option(min=0.0, help="Sampling temperature.", rich_help_panel=_MODEL_PANEL)]),
        ("seed", Annotated[int, typer.Option(help="Sampling seed.", rich_help_panel=_MODEL_PANEL)]),
        ("cache", Annotated[str, typer.Option(help="Thought cache file, 'default' ($O1_RETRIEVER_HOME/thoughts.sqlite) or 'none'.", rich_help_panel=_MODEL_PANEL)]),
        ("cache_max_rows", Annotated[int, typer.Option(min=1, help="Rows the thought cache keeps; beyond them the least recently used are evicted.", rich_help_panel=_MODEL_PANEL)]),
        ("device", Annotated[Optional[str], typer.Option(help="cpu, cuda, ... (default: cuda when available).", rich_help_panel=_MODEL_PANEL)]),
        ("strict", Annotated[bool, typer.Option(help="Fail when the thinker fails instead of searching without thoughts.", rich_help_panel=_MODEL_PANEL)]),
    ]
]
_MODEL_NAMES = [p.name for p in _MODEL_OPTIONS]


def command(*, models: bool = True, group: typer.Typer | None = None, callback: bool = False, **kwargs: Any) -> Callable:
    """Register a command on the app (or on a sub-command ``group``, a ``typer.Typer`` added to
    the app with ``app.add_typer``; with ``callback`` as the group's callback, which runs when
    the group is called, with or without a sub-command); with ``models`` it gains the shared
    model options and receives an ``EmbedderConfig`` as ``config``. Errors of this package
    print one line and exit 2."""

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            _setup_logging(kw.pop("verbose", False))
            if models:
                kw["config"] = EmbedderConfig.from_options(**{name: kw.pop(name) for name in _MODEL_NAMES})
            try:
                return fn(*args, **kw)
            except O1RetrieverError as exc:
                err.print(f"[bold red]error:[/] {escape(str(exc))}")
                raise typer.Exit(2) from None

        params = [p for p in sig.parameters.values() if p.name != "config"]
        params.append(inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")]))
        if models:
            params += _MODEL_OPTIONS
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        target = group or app
        return (target.callback if callback else target.command)(**kwargs)(wrapper)

    return decorate


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
        force=True,
    )
    if not verbose:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()


# -- shared collection options ------------------------------------------------------------------
Collection = Annotated[str, typer.Option("--collection", "-c", help="Chroma collection name.")]
Db = Annotated[Optional[Path], typer.Option("--db", help="Embedded Chroma folder (default $O1_RETRIEVER_HOME/chroma).")]
Host = Annotated[Optional[str], typer.Option("--host", help="Chroma server host (client-server mode).")]
Port = Annotated[int, typer.Option("--port", help="Chroma server port.")]
Token = Annotated[Optional[str], typer.Option("--token", help="Chroma auth token (default: $CHROMA_AUTH_TOKEN).", envvar="CHROMA_AUTH_TOKEN", show_envvar=False)]


def open_index(collection: str, config: EmbedderConfig, db: Path | None, host: str | None, port: int, token: str | None, *, create: bool):
    """Open ``collection`` and load the models of ``config`` (with a status line). Only with
    ``create`` (the commands that index) is a missing collection or database created; reading
    commands fail on a missing one before any model is loaded, and change nothing."""
    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.index import ChromaIndex, make_client, open_collection

    client = make_client(db, host, port, token, create=create)
    if not create:
        open_collection(client, collection)
    with err.status("loading models"):
        embedder = ThinkingEmbedder.from_config(config)
        embedder.check_thinker()  # a thinker that cannot think is refused before any work
    return ChromaIndex(collection, embedder, client=client, create=create)
