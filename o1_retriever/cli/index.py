"""``o1-retriever index``: embed a corpus into a Chroma collection, in sync with the source."""

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

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
    sync: Annotated[bool, typer.Option("--sync/--no-sync", help="Make the collection hold exactly what SOURCE holds now: after writing, remove this source's chunks of deleted files and of chunk positions that no longer exist (other sources' chunks are never touched). --no-sync only adds and updates.")] = True,
    id_prefix: Annotated[str, typer.Option("--id-prefix", help="Put this before every chunk id, so that two sources with the same file names (or _id values) can share a collection.")] = "",
    source_name: Annotated[Optional[str], typer.Option("--source-id", help="Name recorded for this source's chunks (default: the absolute path of the folder or .jsonl file); give the old name after moving a folder.")] = None,
    *,
    config: EmbedderConfig,
) -> None:
    """Embed a corpus into a Chroma collection and keep it in sync with it: rerun at will, only
    new or changed chunks are embedded, and chunks the source no longer holds are removed."""
    import itertools

    from o1_retriever.errors import CollectionError, SourceError
    from o1_retriever.index import SourceReport, read_source, source_id

    report = SourceReport()
    documents = read_source(source, report, id_prefix=id_prefix, chunk_size=chunk_size, overlap=min(150, chunk_size // 4))
    name = source_name or source_id(source)
    first = next(documents, None)
    # documents are never thought about: indexing loads no thinker (less memory, faster start)
    plain = dataclasses.replace(config, thinker="none")
    if first is None:  # an empty source: only a sync that empties what it indexed before has work
        empty = SourceError(f"{source}: no documents found (expected .txt/.md files, a .jsonl corpus or a BEIR folder)")
        if not sync:
            raise empty
        try:
            index = open_index(collection, plain, db, host, port, token, create=False)
        except CollectionError:
            raise empty from None
        if not index.source_ids(name):
            raise empty
    else:
        index = open_index(collection, plain, db, host, port, token, create=True)
    stats = index.add(itertools.chain([first] if first else [], documents), source=name, sync=sync, batch_size=batch_size)
    removed = f"{stats.removed} removed" if sync else "none removed (--no-sync)"
    err.print(
        f"[green]indexed[/] {stats.seen} documents into {collection!r}: {stats.written} written, "
        f"{stats.unchanged} unchanged, {removed}, {len(stats.duplicates)} repeated ids skipped; collection holds {index.count()} "
        f"(its keyword index for --mode keyword/hybrid is kept with it)"
    )
    for line in report.repaired:
        err.print(f"[yellow]repaired[/] {line}")
    for line in report.skipped:
        err.print(f"[yellow]skipped[/] {line}")
