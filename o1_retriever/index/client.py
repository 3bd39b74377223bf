"""Chroma clients: creating one (embedded or HTTP, with token authentication), retrying
idempotent calls while a server is unreachable, and translating Chroma's failures into this
package's one-line errors (:class:`ServerError`, :class:`CollectionError`).

* Embedded ``PersistentClient`` at ``$O1_RETRIEVER_HOME/chroma`` by default; ``HttpClient`` when
  a host is given (with Chroma token authentication when a token is given).
* Against a server, idempotent calls (get, query, count, upsert and delete by id) are retried
  with exponential backoff while the server is unreachable, then raise :class:`ServerError`.
* Opening a collection for reading never creates one; a missing one is a
  :class:`CollectionError` naming those that exist.

The collection class built on these is :class:`~o1_retriever.index.chroma.ChromaIndex`.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from o1_retriever.errors import CollectionError, ServerError
from o1_retriever.index.layout import server_of

log = logging.getLogger(__name__)

T = TypeVar("T")

TOKEN_ENV = "CHROMA_AUTH_TOKEN"
#: retries of an idempotent call while a Chroma server is unreachable; the waits between tries
#: double from RETRY_BACKOFF seconds up to RETRY_MAX_WAIT (6 retries: about 12 s in all)
SERVER_RETRIES = 6
RETRY_BACKOFF = 0.25
RETRY_MAX_WAIT = 4.0


def make_client(
    path: str | Path | None = None,
    host: str | None = None,
    port: int = 8000,
    auth_token: str | None = None,
    *,
    create: bool = True,
    retries: int = SERVER_RETRIES,
) -> Any:
    """A Chroma client: embedded at ``path`` (default ``$O1_RETRIEVER_HOME/chroma``), or HTTP to
    ``host:port``. The token comes from ``auth_token`` or ``$CHROMA_AUTH_TOKEN``. With
    ``create=False`` (reading) a missing embedded database is a :class:`CollectionError` and no
    folder is made."""
    import chromadb
    from chromadb.config import Settings

    if host:
        token = auth_token or os.environ.get(TOKEN_ENV)
        settings = Settings(anonymized_telemetry=False)
        if token:
            settings = Settings(
                anonymized_telemetry=False,
                chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                chroma_client_auth_credentials=token,
            )
        try:  # the client checks the server (and our credentials) while it is built
            return with_retries(lambda: chromadb.HttpClient(host=host, port=port, settings=settings), retries, f"{host}:{port}")
        except Exception as exc:
            raise _server_error(exc, host, port, token, retries) from None
    from o1_retriever.models import home

    path = Path(path).expanduser() if path else home() / "chroma"
    if not create and not (path / "chroma.sqlite3").is_file():
        raise CollectionError(f"no Chroma database at {path}: nothing has been indexed there (`o1-retriever index` creates it)")
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def _transient(exc: BaseException) -> bool:
    """A failure that retrying may heal: the server is down, restarting or dropped the
    connection (chromadb's HttpClient raises httpx transport errors then, or a ValueError
    "Could not connect to a Chroma server ..." while it is being built; its "Could not connect
    to tenant ..." wraps other errors and is not retried)."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ValueError) and str(exc).startswith("Could not connect to a Chroma server")


def with_retries(call: Callable[[], T], retries: int, server: str) -> T:
    """``call()``, retried ``retries`` times with exponential backoff while it fails with a
    transient server error (:func:`_transient`) (the last one is raised as is). Only for idempotent calls."""
    import tenacity

    def warn(state: tenacity.RetryCallState) -> None:
        log.warning(
            "Chroma server %s: %s; retrying in %.2fs (attempt %d of %d)",
            server, state.outcome.exception(), state.next_action.sleep, state.attempt_number + 1, retries + 1,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_transient),
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=tenacity.wait_exponential(multiplier=RETRY_BACKOFF, max=RETRY_MAX_WAIT),
        before_sleep=warn,
        reraise=True,
    )
    return retrying(call)


def _server_error(exc: Exception, host: str, port: int, token: str | None, retries: int = 0) -> Exception:
    """A one-line error for a Chroma server that refused us or cannot be reached; the token
    itself never appears in it."""
    from chromadb.errors import ChromaAuthError

    if isinstance(exc, ChromaAuthError):
        given = "the token was refused" if token else f"no token was given (--token or ${TOKEN_ENV})"
        return ServerError(f"Chroma server {host}:{port} refused the request ({exc}): {given}")
    if _transient(exc) or isinstance(exc, (ConnectionError, OSError)):
        tries = f" ({retries + 1} attempts)" if retries else ""
        return ServerError(f"cannot reach a Chroma server at {host}:{port}{tries}: {exc}")
    # anything else (a proxy or another service on the port, a handshake cut mid-way): one
    # line, never a page of HTML
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ServerError(f"Chroma server {host}:{port} did not answer as a Chroma server: {first}")


def _location(client: Any) -> str:
    """Where a client's collections live, for messages."""
    server = server_of(client)
    if server:
        return f"the Chroma server at {server[0]}:{server[1]}"
    settings = client.get_settings() if hasattr(client, "get_settings") else None
    return str(getattr(settings, "persist_directory", None) or "this Chroma client")


def chroma_call(client: Any, call: Callable[[], T], retries: int = SERVER_RETRIES) -> T:
    """``call()`` against ``client``: retried while a server is unreachable, then a
    :class:`ServerError` (so is a refused token); other Chroma errors pass through."""
    import chromadb.errors

    server = server_of(client)
    if server is None:
        return call()
    try:
        return with_retries(call, retries, f"{server[0]}:{server[1]}")
    except chromadb.errors.ChromaAuthError as exc:
        token = client.get_settings().chroma_client_auth_credentials  # only whether one was given
        raise _server_error(exc, *server, token) from None
    except Exception as exc:
        if _transient(exc):
            raise _server_error(exc, *server, None, retries) from None
        if type(exc) is Exception:  # an error body chromadb does not map to a ChromaError type
            raise CollectionError(f"Chroma server {server[0]}:{server[1]} refused the request: {exc}") from None
        raise


def collection_names(client: Any, retries: int = SERVER_RETRIES) -> list[str]:
    """Names of the collections behind ``client``, sorted."""
    found = chroma_call(client, client.list_collections, retries)
    return sorted(c if isinstance(c, str) else c.name for c in found)


def open_collection(client: Any, name: str, retries: int = SERVER_RETRIES) -> Any:
    """The collection ``name`` if it exists; never creates one. A missing one is a
    :class:`CollectionError` naming those that exist and the closest name."""
    import chromadb.errors

    try:
        return chroma_call(client, lambda: client.get_collection(name, embedding_function=None), retries)
    except (chromadb.errors.NotFoundError, chromadb.errors.InvalidArgumentError):
        names = collection_names(client, retries)
    location = _location(client)
    if not names:
        raise CollectionError(f"no collection {name!r} in {location}, which holds none yet (`o1-retriever index` creates one)") from None
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise CollectionError(f"no collection {name!r} in {location} (it holds: {', '.join(names)}){hint}") from None


def client_of(collection: Any) -> Any:
    """The client behind a Chroma collection object, or ``None`` when it does not say. Chroma
    has no public accessor: this reads its private ``_client`` (the one place that does; the
    upper bound on ``chromadb`` in pyproject.toml guards it)."""
    return getattr(collection, "_client", None)
