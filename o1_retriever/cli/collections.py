"""``o1-retriever collections``: list the collections of a Chroma database (embedded or a
server), show one (``info``), delete one (``delete``). No model is loaded; listing and ``info``
change nothing."""

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from o1_retriever.cli.app import Db, Host, Port, Token, app, command, err, out

collections_app = typer.Typer(
    help="List the collections of a Chroma database (the default when no sub-command is given), show one, delete one.",
    invoke_without_command=True,
)
app.add_typer(collections_app, name="collections")

Name = Annotated[str, typer.Argument(help="Collection name.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _client(db: Any, host: Any, port: int, token: Any) -> Any:
    from o1_retriever.index import make_client

    return make_client(db, host, port, token, create=False)


def _encoder(fingerprint: dict | None) -> str:
    if not fingerprint:
        return "(not recorded)"
    if "encoder" in fingerprint:
        return f"{fingerprint['encoder']} ({fingerprint.get('dimension', '?')}-d)"
    return json.dumps(fingerprint, sort_keys=True)


@command(models=False, group=collections_app, callback=True)
def collections_cmd(
    ctx: typer.Context,
    db: Db = None,
    host: Host = None,
    port: Port = 8000,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List the collections (name, chunks, encoder fingerprint, sources); `info NAME` shows
    one, `delete NAME` deletes one. Put --db/--host/... after the sub-command for those."""
    from o1_retriever.errors import CollectionError

    if ctx.invoked_subcommand is not None:
        if (db, host, port, as_json) != (None, None, 8000, False):
            raise CollectionError(f"put the options after the sub-command: o1-retriever collections {ctx.invoked_subcommand} NAME --db/--host/...")
        return
    _list_collections(db, host, port, token, as_json)


@command(name="list", models=False, group=collections_app)
def list_cmd(db: Db = None, host: Host = None, port: Port = 8000, token: Token = None, as_json: AsJson = False) -> None:
    """List the collections: the same as the bare `collections` (a newcomer's first guess)."""
    _list_collections(db, host, port, token, as_json)


def _list_collections(db: Any, host: Any, port: int, token: Any, as_json: bool) -> None:
    from o1_retriever.index import collection_info, collection_names, open_collection

    client = _client(db, host, port, token)
    infos = [collection_info(open_collection(client, name)) for name in collection_names(client)]
    if as_json:
        sys.stdout.write(json.dumps([_summary(i) for i in infos], ensure_ascii=False) + "\n")
        return
    table = Table(title=f"{len(infos)} collections")
    for column, justify in (("name", "left"), ("chunks", "right"), ("encoder", "left"), ("sources", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in infos:
        sources = str(len(info.sources)) + (f" (+{info.unsourced} chunks without one)" if info.unsourced else "")
        table.add_row(info.name, str(info.count), _encoder(info.fingerprint), sources)
    out.print(table)


def _summary(info: Any) -> dict:
    return {"name": info.name, "count": info.count, "fingerprint": info.fingerprint, "sources": len(info.sources), "unsourced": info.unsourced}


@command(name="info", models=False, group=collections_app)
def info_cmd(name: Name, db: Db = None, host: Host = None, port: Port = 8000, token: Token = None, as_json: AsJson = False) -> None:
    """Show one collection: chunks, encoder fingerprint, distance space, whether its keyword
    index is current, chunks per source."""
    from o1_retriever.index import collection_info, keyword, open_collection

    client = _client(db, host, port, token)
    collection = open_collection(client, name)
    info = collection_info(collection)
    stale = keyword.stale_reason(collection, keyword.read_manifest(keyword.keyword_dir_of(client, name)), info.count)
    if as_json:
        sys.stdout.write(json.dumps({**info.to_dict(), "keyword_index": {"current": stale is None, "stale_reason": stale}}, ensure_ascii=False) + "\n")
        return
    out.print(f"[bold]{info.name}[/]: {info.count} chunks, space {info.space}")
    out.print(f"keyword index: {'current' if stale is None else 'stale: ' + stale + ' (searches rebuild it in memory; `o1-retriever index` stores it)'}", highlight=False)
    out.print(f"encoder: {json.dumps(info.fingerprint, sort_keys=True) if info.fingerprint else '(not recorded)'}", highlight=False)
    table = Table(title=f"{len(info.sources)} sources")
    table.add_column("source")
    table.add_column("chunks", justify="right")
    for source, n in info.sources.items():
        table.add_row(source, str(n))
    if info.unsourced:
        table.add_row("(no source recorded)", str(info.unsourced))
    out.print(table)


@command(name="delete", models=False, group=collections_app)
def delete_cmd(
    name: Name,
    db: Db = None,
    host: Host = None,
    port: Port = 8000,
    token: Token = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed when not on a terminal).")] = False,
) -> None:
    """Delete a collection and everything in it (asks first on a terminal; --yes for scripts)."""
    from o1_retriever.errors import CollectionError
    from o1_retriever.index import keyword, open_collection
    from o1_retriever.index.client import chroma_call

    client = _client(db, host, port, token)
    count = chroma_call(client, open_collection(client, name).count)
    if not yes:
        if not sys.stdin.isatty():
            raise CollectionError(f"not deleting {name!r} ({count} chunks) without confirmation: stdin is not a terminal; pass --yes")
        typer.confirm(f"delete collection {name!r} and its {count} chunks?", abort=True)
    import chromadb.errors

    try:
        chroma_call(client, lambda: client.delete_collection(name))
    except chromadb.errors.NotFoundError:  # a retry after a lost answer: the first try deleted it
        pass
    keyword.remove(client, name)  # after the collection: a kill in between leaves files no collection matches
    err.print(f"[green]deleted[/] {name!r} ({count} chunks)")
