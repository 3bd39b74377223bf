"""Errors raised by o1-retriever.

Every error a user can provoke with bad input derives from :class:`O1RetrieverError`, so callers
(and the CLI) can catch one type and show a one-line message instead of a deep stack trace.
"""

from __future__ import annotations


class O1RetrieverError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidQueryError(O1RetrieverError, ValueError):
    """A query that cannot be embedded (empty, whitespace only, not a string)."""


class SourceError(O1RetrieverError, ValueError):
    """A document source that cannot be read (missing file, malformed line, empty corpus)."""


class EmbedderMismatchError(O1RetrieverError):
    """A collection was filled by another embedder than the one trying to use it."""


class CollectionError(O1RetrieverError):
    """Chroma refused an operation (bad collection name, dimension mismatch, ...)."""


class ServerError(CollectionError):
    """A Chroma server that cannot be reached or that refused our credentials."""


class ThinkerError(O1RetrieverError, RuntimeError):
    """The thinker failed to produce thoughts (backend down, timeout, generation error).

    A failure of one call: the embedder falls back to the plain query embedding for it (unless
    ``strict``), since the next call may succeed."""


class ThinkerUnavailableError(ThinkerError):
    """The thinker cannot think about any query: a chat prompt for a model without a chat
    template, a prompt that cannot fit the model's context, a server that refuses the model name
    or the credentials. Never a fallback: every entry point refuses once, before its work
    (:meth:`o1_retriever.ThinkingEmbedder.check_thinker`)."""


class ModelLoadError(O1RetrieverError, RuntimeError):
    """A model could not be found or loaded."""


class CacheError(O1RetrieverError):
    """A thought cache that is missing, unreadable or kept locked by another process."""


class DependencyError(O1RetrieverError, RuntimeError):
    """An installed dependency lacks what o1-retriever uses: a version outside the range
    ``pyproject.toml`` declares (where a private part of it is used, the range has an upper bound)."""


class ArgumentError(CollectionError, TypeError):
    """An argument of the wrong kind (an adapter's ``embeddings=`` / ``embed_model=`` that is no
    embedder). Deprecated base: it derives from :class:`CollectionError` only because 0.1 raised
    that here; catch ``ArgumentError`` (or ``TypeError``), the ``CollectionError`` base goes in 0.3."""


def check_query(query: object) -> str:
    """Return ``query`` if it is a non-empty string, else raise :class:`InvalidQueryError`."""
    if not isinstance(query, str):
        raise InvalidQueryError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidQueryError("query is empty or whitespace only")
    if not is_valid_unicode(query):
        raise InvalidQueryError("query is not valid Unicode text (it contains a lone surrogate)")
    return query


def check_top_k(k: object, name: str = "k") -> int:
    """Return ``k`` if it is a positive integer (hits to return), else raise
    :class:`InvalidQueryError` naming the argument as the caller spells it."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidQueryError(f"{name} must be a positive integer, got {k!r}")
    return k


def is_valid_unicode(text: str) -> bool:
    """False for strings with lone surrogates (from ``surrogateescape`` decoding, broken JSON
    escapes, ...): tokenizers and UTF-8 encoders reject them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def renamed_argument(value: object, old_value: object, *, new: str, old: str, caller: str, depth: int = 1) -> object:
    """The value of an argument renamed from ``old`` to ``new`` (the old name is kept for one
    minor version): ``value``, or ``old_value`` with a ``DeprecationWarning`` naming the new
    name, pointed at the line that called ``caller`` (``depth``: the frames between ``caller``
    and this function, 1 when ``caller`` calls it). Giving both raises :class:`ArgumentError`."""
    if old_value is None:
        return value
    if value is not None:
        raise ArgumentError(f"{caller} got both {new}= and {old}= (its deprecated name): pass {new}= only")
    import warnings

    warnings.warn(f"{caller}: {old}= is deprecated, pass {new}= instead ({old}= goes in the next minor version)", DeprecationWarning, stacklevel=2 + depth)
    return old_value
