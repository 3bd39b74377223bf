"""``o1-retriever cache stats`` and ``o1-retriever cache clear``: look into and empty the
thought cache. No model is loaded; ``stats`` reads through a read-only connection and changes
nothing (not even an old file's schema)."""

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from o1_retriever.cli.app import app, command, err, out

cache_app = typer.Typer(help="Look into (stats) or empty (clear) the thought cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

CachePath = Annotated[Optional[Path], typer.Option("--cache", help="Thought cache file (default $O1_RETRIEVER_HOME/thoughts.sqlite).")]


def _path(cache: Optional[Path]) -> Path:
    from o1_retriever.config import EmbedderConfig

    path = cache or EmbedderConfig(cache="default").cache_path()
    assert path is not None
    return path


def _when(timestamp: Optional[float]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


@command(name="stats", models=False, group=cache_app)
def stats_cmd(
    cache: CachePath = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Show rows, size, hit rate of the last process, thinkers and prompts.

    Rows, size on disk, first and last use, the hit rate of the last process that used the
    cache (and its bound), and which thinkers and prompts wrote the rows. Reads only."""
    from o1_retriever.cache import read_stats

    stats = read_stats(_path(cache))
    if as_json:
        sys.stdout.write(json.dumps(stats.to_dict(), ensure_ascii=False) + "\n")
        return
    last = stats.last_process
    summary = Table(title=f"thought cache {stats.path}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("rows", f"{stats.rows:,}" + (f" (bound of the last process: {last['max_rows']:,})" if last else ""))
    size = stats.bytes_on_disk
    summary.add_row("size on disk", f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB")
    summary.add_row("used", f"{_when(stats.first_use)} .. {_when(stats.last_use)}")
    if last:
        lookups = last["hits"] + last["misses"]
        rate = f"{stats.last_hit_rate:.1%} hits ({last['hits']:,} of {lookups:,} lookups)" if lookups else "no lookups"
        summary.add_row("last process", f"pid {last['pid']}, {_when(last['since'])} .. {_when(last['until'])}: {rate}, {last['evicted']:,} rows evicted")
    else:
        summary.add_row("last process", "not recorded (no process has used this file since the cache became bounded)")
    if stats.schema == 0:
        summary.add_row("schema", "written before the cache was bounded: migrated in place on its next use")
    out.print(summary)
    origins = Table(title="rows by thinker and prompt")
    origins.add_column("thinker")
    origins.add_column("prompt")
    origins.add_column("rows", justify="right")
    for origin in stats.origins:
        origins.add_row(origin["thinker"] or "(not recorded)", origin["prompt"] or "(not recorded)", f"{origin['rows']:,}")
    out.print(origins)


@command(name="clear", models=False, group=cache_app)
def clear_cmd(
    cache: CachePath = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed when not on a terminal).")] = False,
) -> None:
    """Delete every cached thought (asks first on a terminal; --yes for scripts)."""
    from o1_retriever.cache import ThoughtCache, read_stats
    from o1_retriever.errors import CacheError

    path = _path(cache)
    rows = read_stats(path).rows  # refuses a missing or unreadable file before anything is opened for writing
    if not yes:
        if not sys.stdin.isatty():
            raise CacheError(f"not clearing {path} ({rows} rows) without confirmation: stdin is not a terminal; pass --yes")
        typer.confirm(f"delete the {rows} cached thoughts in {path}?", abort=True)
    deleted = ThoughtCache(path).clear()
    err.print(f"[green]cleared[/] {path} ({deleted} rows)")
