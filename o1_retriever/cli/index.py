"""``o1-retriever index``: embed a corpus into a Chroma collection."""

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from o1_retriever.cli.app import Collection, Db, Host, Port, Token, command, err, open_index
from o1_retriever.config import EmbedderConfig


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
    index = open_index(collection, dataclasses.replace(config, thinker="none"), db, host, port, token)
    stats = index.add(itertools.chain([first], documents), batch_size=batch_size)
    err.print(
        f"[green]indexed[/] {stats.seen} documents into {collection!r}: {stats.written} written, "
        f"{stats.unchanged} unchanged, {len(stats.duplicates)} repeated ids skipped; collection holds {index.count()}"
    )
    for line in report.repaired:
        err.print(f"[yellow]repaired[/] {line}")
    for line in report.skipped:
        err.print(f"[yellow]skipped[/] {line}")
