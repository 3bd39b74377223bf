"""The ``o1-retriever`` command line: index, search, demo (eval, rag-eval, synthesize and train
are added by their own modules)."""


import dataclasses
import functools
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from o1_retriever.embedder import EmbedderConfig
from o1_retriever.errors import O1RetrieverError, check_query

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Thinking before retrieval (O1 Embedder) on Chroma.")
out = Console()
err = Console(stderr=True, soft_wrap=True)

# -- options shared by every command that builds an embedder ------------------------------------
_MODEL_PANEL = "Models"
_MODEL_OPTIONS: list[inspect.Parameter] = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, default, annotation in [
        ("thinker", "smollm2", Annotated[str, typer.Option(help="Thinker: 'smollm2', a HF id/folder, 'llamacpp:GGUF', or an OpenAI-compatible http(s)://.../v1 URL.", rich_help_panel=_MODEL_PANEL)]),
        ("thinker_model", None, Annotated[Optional[str], typer.Option(help="Model name on an OpenAI-compatible thinker server.", rich_help_panel=_MODEL_PANEL)]),
        ("thinker_timeout", 60.0, Annotated[float, typer.Option(min=0.1, help="Seconds per request to an OpenAI-compatible thinker (then retries, then fallback).", rich_help_panel=_MODEL_PANEL)]),
        ("thinker_dtype", "auto", Annotated[str, typer.Option(help="Precision of a transformers thinker: auto (bfloat16 where the CPU/GPU computes it natively, else float32) | float32 | bfloat16 | float16.", rich_help_panel=_MODEL_PANEL)]),
        ("encoder", "minilm", Annotated[str, typer.Option(help="Encoder: 'minilm', a sentence-transformers id/folder, or 'last-token:SPEC'.", rich_help_panel=_MODEL_PANEL)]),
        ("model", None, Annotated[Optional[str], typer.Option(help="A unified O1 model (thinks and embeds); replaces --thinker/--encoder.", rich_help_panel=_MODEL_PANEL)]),
        ("aggregation", "o1+query", Annotated[str, typer.Option(help="o1 | o1+query | hyde.", rich_help_panel=_MODEL_PANEL)]),
        ("thoughts", 3, Annotated[int, typer.Option(min=1, help="Thoughts per query (k).", rich_help_panel=_MODEL_PANEL)]),
        ("prompt", "passage", Annotated[str, typer.Option(help="Thought prompt: passage | paper.", rich_help_panel=_MODEL_PANEL)]),
        ("max_new_tokens", 64, Annotated[int, typer.Option(min=1, help="Tokens per thought.", rich_help_panel=_MODEL_PANEL)]),
        ("temperature", 0.7, Annotated[float, typer.Option(min=0.0, help="Sampling temperature.", rich_help_panel=_MODEL_PANEL)]),
        ("seed", 0, Annotated[int, typer.Option(help="Sampling seed.", rich_help_panel=_MODEL_PANEL)]),
        ("cache", "default", Annotated[str, typer.Option(help="Thought cache file, 'default' ($O1_RETRIEVER_HOME/thoughts.sqlite) or 'none'.", rich_help_panel=_MODEL_PANEL)]),
        ("device", None, Annotated[Optional[str], typer.Option(help="cpu, cuda, ... (default: cuda when available).", rich_help_panel=_MODEL_PANEL)]),
        ("strict", False, Annotated[bool, typer.Option(help="Fail when the thinker fails instead of searching without thoughts.", rich_help_panel=_MODEL_PANEL)]),
    ]
]
_MODEL_NAMES = [p.name for p in _MODEL_OPTIONS]


def command(*, models: bool = True, **kwargs: Any) -> Callable:
    """Register a command; with ``models`` it gains the shared model options and receives an
    ``EmbedderConfig`` as ``config``. Errors of this package print one line and exit 2."""

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
        return app.command(**kwargs)(wrapper)

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


def _index(collection: str, config: EmbedderConfig, db: Path | None, host: str | None, port: int, token: str | None):
    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.index import ChromaIndex

    with err.status("loading models"):
        embedder = ThinkingEmbedder.from_config(config)
    return ChromaIndex(collection, embedder, path=db, host=host, port=port, auth_token=token)


@command(name="index")
def index_cmd(
    source: Annotated[Path, typer.Argument(help="A folder of .txt/.md files, a .jsonl corpus ({_id,title,text}) or a BEIR folder.")],
    collection: Collection = "o1-docs",
    db: Db = None,
    host: Host = None,
    port: Port = 8000,
    token: Token = None,
    chunk_size: Annotated[int, typer.Option(min=100, help="Characters per chunk for text files.")] = 1200,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents embedded and written per batch (each batch is committed).")] = 1024,
    *,
    config: EmbedderConfig,
) -> None:
    """Embed a corpus into a Chroma collection (an idempotent upsert: rerun at will)."""
    import itertools

    from o1_retriever.errors import SourceError
    from o1_retriever.index import SourceReport, read_source

    report = SourceReport()
    documents = read_source(source, report, chunk_size=chunk_size, overlap=min(150, chunk_size // 4))
    first = next(documents, None)  # an empty corpus fails before any model is loaded
    if first is None:
        raise SourceError(f"{source}: no documents found (expected .txt/.md files, a .jsonl corpus or a BEIR folder)")
    # documents are never thought about: indexing loads no thinker (less memory, faster start)
    index = _index(collection, dataclasses.replace(config, thinker="none"), db, host, port, token)
    stats = index.add(itertools.chain([first], documents), batch_size=batch_size)
    err.print(
        f"[green]indexed[/] {stats.seen} documents into {collection!r}: {stats.written} written, "
        f"{stats.unchanged} unchanged, {len(stats.duplicates)} repeated ids skipped; collection holds {index.count()}"
    )
    for line in report.repaired:
        err.print(f"[yellow]repaired[/] {line}")
    for line in report.skipped:
        err.print(f"[yellow]skipped[/] {line}")


@command(name="search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="The question.")],
    collection: Collection = "o1-docs",
    db: Db = None,
    host: Host = None,
    port: Port = 8000,
    token: Token = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Results to return.")] = 10,
    no_think: Annotated[bool, typer.Option("--no-think", help="Plain dense retrieval (no thoughts).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: {query, thoughts, results:[{id, score, text}]}.")] = False,
    *,
    config: EmbedderConfig,
) -> None:
    """Think about QUERY, then search the collection."""
    check_query(query)  # before loading any model
    if no_think:  # the plain baseline needs no thinker (a unified model still embeds the query)
        config = dataclasses.replace(config, thinker="none")
    index = _index(collection, config, db, host, port, token)
    result = index.search(query, k=k, thinking=not no_think)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        return
    _show(result)


def _show(result: Any, title: str | None = None) -> None:
    if result.fallback:
        out.print("[yellow]the thinker failed: results come from the plain query[/]")
    if result.thoughts:
        body = "\n\n".join(f"[bold]{i}.[/] {t}" for i, t in enumerate(result.thoughts, 1))
        out.print(Panel(body, title=title or "thoughts", border_style="cyan"))
    table = Table(title=f"results for: {result.query}" + ("" if result.thinking else " (no thinking)"))
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id")
    table.add_column("text")
    for n, hit in enumerate(result.hits, 1):
        table.add_row(str(n), f"{hit.score:.3f}", hit.id, hit.text[:160].replace("\n", " ") + ("..." if len(hit.text) > 160 else ""))
    out.print(table)


DEMO_QUERIES = [
    "Why does the sky look blue during the day?",
    "Which metal is liquid at room temperature?",
    "How do bees tell each other where flowers are?",
]


@command(name="demo")
def demo_cmd(
    db: Db = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Results per query.")] = 3,
    query: Annotated[Optional[list[str]], typer.Option("--query", "-q", help="Your own question(s) instead of the samples.")] = None,
    *,
    config: EmbedderConfig,
) -> None:
    """Index the small sample corpus that ships with the package, then search it with and
    without thinking, showing the thoughts (the README's first command)."""
    from importlib.resources import files

    from o1_retriever.index import read_source

    sample = Path(str(files("o1_retriever") / "data" / "sample_corpus"))
    index = _index("o1-demo", config, db, None, 8000, None)
    stats = index.add(read_source(sample))
    err.print(f"[green]sample corpus:[/] {stats.seen} chunks ({stats.written} embedded, {stats.unchanged} already indexed)")
    queries = query or DEMO_QUERIES
    with err.status("thinking"):
        thought = index.search_many(queries, k=k, thinking=True)
    plain = index.search_many(queries, k=k, thinking=False)
    for with_t, without in zip(thought, plain):
        out.rule(with_t.query)
        _show(with_t)
        _show(without)


# Commands of other areas register themselves with @command when their module is imported.
# (one import line per area below)
# <commands>
import o1_retriever.evaluation.commands  # noqa: E402,F401  (eval, rag-eval)
import o1_retriever.training.commands  # noqa: E402,F401  (synthesize, train)


def main() -> None:  # pragma: no cover - console entry point wrapper
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
