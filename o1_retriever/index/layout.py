"""Where things of a collection live: whether a Chroma client talks to a server
(:func:`server_of`), and the folder of a collection's keyword index (:func:`keyword_dir_of`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def server_of(client: Any) -> tuple[str, int] | None:
    """``(host, port)`` of an HTTP client, ``None`` for an embedded one."""
    settings = client.get_settings() if hasattr(client, "get_settings") else None
    if settings is None or "fastapi" not in str(settings.chroma_api_impl).lower():
        return None
    return str(settings.chroma_server_host), int(settings.chroma_server_http_port or 8000)


def keyword_dir_of(client: Any, name: str) -> Path | None:
    """The keyword index folder of collection ``name``: next to an embedded database
    (``<db>/o1-keyword/<name>``), under ``$O1_RETRIEVER_HOME/keyword/<host>-<port>/<name>`` for a
    server; ``None`` for a client that keeps nothing on disk (an in-memory one)."""
    from o1_retriever.models import home

    server = server_of(client)
    if server is not None:
        host = re.sub(r"[^a-zA-Z0-9._-]+", "_", server[0])
        return home() / "keyword" / f"{host}-{server[1]}" / name
    settings = client.get_settings() if hasattr(client, "get_settings") else None
    if settings is None or not getattr(settings, "is_persistent", False) or not settings.persist_directory:
        return None
    return Path(settings.persist_directory) / "o1-keyword" / name
