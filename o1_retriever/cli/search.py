"""``o1-retriever search`` and ``o1-retriever demo``."""

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.panel import Panel
from rich.table import Table

from o1_retriever.cli.app import Collection, Db, Host, Port, Token, command, err, open_index, out
from o1_retriever.config import EmbedderConfig
from o1_retriever.errors import InvalidQueryError, check_query
from o1_retriever.index.hybrid import DEFAULT_MODE, check_mode


@command(name="search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="The question.")],
    collection: Collection = "o1-docs",
    db: Db = None,
    host: Host = None,
    port: Port = 8000,
    token: Token = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Results to return.")] = 10,
    think: Annotated[str, typer.Option("--think", help="always: think about every query; never: plain dense retrieval; auto: search plainly first and think only when the top 10 look uncertain (see --gate-profile).")] = "always",
    no_think: Annotated[bool, typer.Option("--no-think", help="Same as --think never.")] = False,
    gate_profile: Annotated[Optional[Path], typer.Option("--gate-profile", help="--think auto: a gate profile written by 'o1-retriever calibrate' (default: the built-in one).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="dense: vectors; keyword: BM25 over the collection's keyword index; hybrid: both, their scores min-max normalised and averaged. Thoughts expand both sides.")] = DEFAULT_MODE,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: {query, mode, thinking, thoughts, results:[{id, score, text, ranks (keyword/hybrid: {dense, keyword})}], gate (--think auto)}.")] = False,
    *,
    config: EmbedderConfig,
) -> None:
    """Think about QUERY, then search the collection."""
    from o1_retriever.gate import GateProfile
    from o1_retriever.search import THINKING_MODES

    check_query(query)  # before loading any model
    check_mode(mode)
    if think not in THINKING_MODES:
        raise InvalidQueryError(f"--think must be one of {', '.join(THINKING_MODES)}, got {think!r}")
    if no_think and think not in ("always", "never"):
        raise InvalidQueryError(f"--no-think contradicts --think {think}")
    think_mode = "never" if no_think else think
    if gate_profile is not None and think_mode != "auto":
        raise InvalidQueryError("--gate-profile is the gate of --think auto; add --think auto")
    gate = GateProfile.load(gate_profile) if think_mode == "auto" else None  # a bad profile fails before any model loads
    if think_mode == "never":  # the plain baseline needs no thinker (a unified model still embeds the query)
        config = dataclasses.replace(config, thinker="none")
    index = open_index(collection, config, db, host, port, token, create=False)
    result = index.search(query, k=k, thinking=think_mode, gate=gate, mode=mode)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        return
    show_result(result)


def show_result(result: Any, title: str | None = None) -> None:
    if result.gate is not None:
        out.print(f"[dim]gate: {result.gate.reason}[/]")
    if result.fallback:
        out.print("[yellow]no usable thoughts (the thinker failed or wrote none): results come from the plain query[/]")
    if result.thoughts:
        body = "\n\n".join(f"[bold]{i}.[/] {t}" for i, t in enumerate(result.thoughts, 1))
        out.print(Panel(body, title=title or "thoughts", border_style="cyan"))
    table = Table(title=f"results for: {result.query}" + ("" if result.thinking else " (no thinking)") + ("" if result.mode == "dense" else f" ({result.mode})"))
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    sides = list(result.hits[0].ranks or {}) if result.hits else []
    for side in sides:  # keyword / hybrid: each side's rank ("-": not in that side's list)
        table.add_column(f"{side} rank", justify="right")
    table.add_column("id")
    table.add_column("text")
    for n, hit in enumerate(result.hits, 1):
        ranks = [str((hit.ranks or {}).get(side) or "-") for side in sides]
        table.add_row(str(n), f"{hit.score:.3f}", *ranks, hit.id, hit.text[:160].replace("\n", " ") + ("..." if len(hit.text) > 160 else ""))
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
    index = open_index("o1-demo", config, db, None, 8000, None, create=True)
    stats = index.add(read_source(sample))
    err.print(f"[green]sample corpus:[/] {stats.seen} chunks ({stats.written} embedded, {stats.unchanged} already indexed)")
    queries = query or DEMO_QUERIES
    with err.status("thinking"):
        thought = index.search_many(queries, k=k, thinking=True)
    plain = index.search_many(queries, k=k, thinking=False)
    for with_t, without in zip(thought, plain):
        out.rule(with_t.query)
        show_result(with_t)
        show_result(without)
