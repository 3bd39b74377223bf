"""ThoughtCache: a persistent, bounded SQLite store of generated thoughts.

The key is a hash of everything that decides the thoughts: thinker identity, prompt (name,
version, text), sampling parameters, k and the query text. A hit does no generation.

SQLite in WAL mode lets many readers and one writer work at once, across threads and processes;
each thread gets its own connection. A file that SQLite cannot read is moved aside (kept for
inspection), a fresh cache is started and a warning is logged: losing cached thoughts only costs
time, while refusing to start would take retrieval down.

The cache holds at most ``max_rows`` rows. Each row records when it was last used; when a write
takes the table past the bound, the least recently used rows are deleted. Recording a use turns
a read into a write, so uses are kept in memory and written in batches: with the next write of
new thoughts, when 1000 uses are pending, or at most every 10 seconds (skipped, not waited for,
while another process holds the write lock), and when the cache object is dropped or the process
exits. A cached query therefore does no write of its own almost always.

Files written by earlier versions (no ``used``/``thinker``/``prompt`` columns) are migrated in
place on first open: ``ALTER TABLE ... ADD COLUMN`` keeps every row and every key, and processes
still running the old code keep reading and writing the migrated file (their rows have no
recorded use; their creation time stands in for it).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from o1_retriever.errors import ArgumentError, CacheError, renamed_argument

log = logging.getLogger(__name__)

#: Default bound. An evaluation run writes one row per (query, thinker, prompt, sampling, k):
#: tens of thousands of rows. A row of three 64-token thoughts takes about 1.1 KB on disk
#: (benchmarks/thought_cache.py), so the default bound is about 226 MB.
DEFAULT_MAX_ROWS = 200_000

_FLUSH_SECONDS = 10.0  # recorded uses are written by the first read or write this long after the last flush
_FLUSH_USES = 1000  # ... or until this many are pending
_SCHEMA_VERSION = 1  # PRAGMA user_version of a migrated file (0: the first, unbounded schema)

_TABLE = (
    "CREATE TABLE IF NOT EXISTS thoughts (key TEXT PRIMARY KEY, query TEXT NOT NULL, thoughts TEXT NOT NULL, "
    "created REAL NOT NULL, used REAL, thinker TEXT, prompt TEXT)"
)
_ADDED_COLUMNS = {"used": "REAL", "thinker": "TEXT", "prompt": "TEXT"}  # schema 0 -> 1
_LAST_USE = "COALESCE(used, created)"  # rows written by old code have no `used`
_LRU_INDEX = f"CREATE INDEX IF NOT EXISTS thoughts_last_use ON thoughts({_LAST_USE})"
_META = "CREATE TABLE IF NOT EXISTS cache_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
_BUSY_MS = 30_000
_LOCK_ERRORS = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}

_open_caches: "weakref.WeakSet[ThoughtCache]" = weakref.WeakSet()


def cache_key(*, thinker: str, prompt: str, sampling: dict[str, Any], thoughts: int | None = None, query: str, k: int | None = None) -> str:
    """The key of a query's thoughts: a hash of everything that shapes them (``thoughts``: per
    query; ``k`` is its deprecated name). The hashed payload names it ``"k"`` as the first
    version did, so the keys of existing caches are unchanged."""
    thoughts = renamed_argument(thoughts, k, new="thoughts", old="k", caller="cache_key")
    if thoughts is None:
        raise ArgumentError("cache_key needs thoughts= (thoughts per query)")
    payload = json.dumps(
        {"thinker": thinker, "prompt": prompt, "sampling": sampling, "k": thoughts, "query": query},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ThoughtCache:
    """Thread- and process-safe persistent thought cache, bounded by least-recently-used
    eviction.

    Example::

        from o1_retriever.cache import ThoughtCache, cache_key

        cache = ThoughtCache("/tmp/thoughts.sqlite", max_rows=50_000)
        key = cache_key(thinker="t", prompt="p", sampling={}, thoughts=1, query="why?")
        cache.put_many([(key, "why?", ["Because."])], thinker="t", prompt="p")
        assert cache.get_many([key]) == {key: ["Because."]}
        print(len(cache), cache.hit_rate)

    Args:
        path: SQLite file; ``":memory:"`` is not supported (use ``None`` in the embedder to
            disable caching instead).
        max_rows: the bound; beyond it the least recently used rows are deleted.
    """

    def __init__(self, path: str | Path, *, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self._local = threading.local()
        self._open_lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evicted = 0
        self._since = time.time()
        self._uses: dict[str, float] = {}  # key -> time of its last read, not yet written
        self._uses_lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._written_counters = (0, 0, 0)  # hits, misses, evicted as cache_meta holds them from us
        self._check()
        _open_caches.add(self)

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_TABLE)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "generation", None) != self._generation:
            conn = self._connect()
            self._local.conn = conn
            self._local.generation = self._generation
        return conn

    def _check(self) -> None:
        """Open the file and verify it; move a damaged file aside and start afresh. Then bring
        the schema up to date."""
        with self._open_lock:
            self._generation = time.monotonic_ns()
            deadline = time.monotonic() + _BUSY_MS / 1000
            pause = 0.01
            while True:
                try:
                    conn = self._connect()
                    ok = conn.execute("PRAGMA quick_check").fetchone()[0]
                    conn.execute("SELECT key, query, thoughts FROM thoughts LIMIT 1").fetchall()
                    conn.close()
                    if ok != "ok":
                        raise sqlite3.DatabaseError(ok)
                    break
                except sqlite3.DatabaseError as exc:
                    if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF not in _LOCK_ERRORS:
                        self._quarantine(exc)
                        break
                    # Busy (any extended code) is not damage. Two processes creating the file at
                    # once race to switch it to WAL, and SQLite answers that race with an
                    # immediate "locked" its busy handler never sees: try again, within the
                    # same bound as any other wait for a lock.
                    if time.monotonic() >= deadline:
                        raise CacheError(f"thought cache {self.path} stayed locked by another process: {exc}") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.5)
            conn = self._connect()
            try:
                _migrate(conn)
            except sqlite3.OperationalError as exc:
                raise CacheError(f"thought cache {self.path} could not be updated to the current schema: {exc}") from None
            finally:
                conn.close()

    def _quarantine(self, exc: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.warning("thought cache %s is unreadable (%s): moved to %s, starting a new one", self.path, exc, aside)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                p.replace(Path(str(aside) + suffix))
        self._generation = time.monotonic_ns()

    # -- API ---------------------------------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, list[str]]:
        """Thoughts for the keys that are cached (each read counts as a use of its row)."""
        found: dict[str, list[str]] = {}
        if not keys:
            return found
        conn = self._conn()
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, thoughts in conn.execute(f"SELECT key, thoughts FROM thoughts WHERE key IN ({marks})", chunk):
                found[key] = json.loads(thoughts)
        self._record_uses(found, misses=len(keys) - len(found))
        return found

    def put_many(self, rows: list[tuple[str, str, list[str]]], *, thinker: str | None = None, prompt: str | None = None) -> dict[str, list[str]]:
        """Store ``(key, query, thoughts)`` rows written by ``thinker`` with ``prompt`` (both
        only shown by :func:`read_stats`) and return what the cache holds for those keys. An
        existing key keeps its first thoughts, so concurrent writers of the same query agree
        on one answer. Rows past the bound are evicted, least recently used first."""
        if not rows:
            return {}
        now = time.time()
        with self._write_transaction(self._take_uses()) as conn:
            assert conn is not None  # waits for the lock, or raises CacheError
            inserted = conn.executemany(
                "INSERT OR IGNORE INTO thoughts (key, query, thoughts, created, used, thinker, prompt) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(k, q, json.dumps(t, ensure_ascii=False), now, now, thinker, prompt) for k, q, t in rows],
            ).rowcount
            keys = [k for k, _, _ in rows]
            stored: dict[str, list[str]] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, thoughts in conn.execute(f"SELECT key, thoughts FROM thoughts WHERE key IN ({marks})", chunk):
                    stored[key] = json.loads(thoughts)
            if inserted > 0:
                self._evict(conn)
        return stored

    def flush(self, *, wait: bool = True) -> bool:
        """Write the recorded uses and this process's hit counters now. With ``wait=False`` a
        write lock held by another process is not waited for (the uses stay pending). Returns
        whether the write happened (or nothing was left to write). Raises :class:`CacheError`
        when, waiting, the lock stays held past the busy timeout."""
        uses = self._take_uses()
        if not uses and self._written_counters == self._counters():
            return True
        with self._write_transaction(uses, wait=wait) as conn:
            if conn is None:
                return False
        return True

    @contextmanager
    def _write_transaction(self, uses: dict[str, float], *, wait: bool = True) -> Iterator[sqlite3.Connection | None]:
        """The one way this cache writes: one ``BEGIN IMMEDIATE`` transaction that also records
        the pending ``uses`` (first, so eviction reads them) and, at the end, this process's
        counters. The body runs with the connection; on success the transaction commits, on any
        error it rolls back and ``uses`` are kept pending for the next write. A write lock held
        by another process past the busy timeout raises :class:`CacheError`; with
        ``wait=False`` it is not waited for and the body gets ``None`` (nothing is written).
        Every SQLite failure inside becomes a :class:`CacheError`."""
        conn = self._conn()
        if not wait:
            conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # another process held the write lock past the timeout
            self._restore_uses(uses)
            if wait:
                raise CacheError(f"thought cache {self.path} stayed locked by another process: {exc}") from None
            locked = True
        else:
            locked = False
        finally:
            if not wait:
                conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        if locked:
            yield None
            return
        try:
            self._write_uses(conn, uses)  # before the body, whose eviction reads the uses
            yield conn
            counters = self._write_counters(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            self._restore_uses(uses)
            if isinstance(exc, sqlite3.OperationalError):
                raise CacheError(f"thought cache {self.path}: write failed and was rolled back: {exc}") from exc
            raise
        self._written_counters = counters

    @property
    def hit_rate(self) -> float | None:
        """Share of keys looked up by this object that were found (None before any lookup)."""
        total = self.hits + self.misses
        return self.hits / total if total else None

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM thoughts").fetchone()[0])

    def clear(self) -> int:
        """Delete every row, give the space back to the file system where no other process is
        reading, and return how many rows were deleted."""
        with self._uses_lock:
            self._uses.clear()
        conn = self._conn()
        deleted = conn.execute("DELETE FROM thoughts").rowcount
        conn.execute("PRAGMA busy_timeout=0")  # shrinking the file waits for no reader
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:  # another process is reading: the space is reused later
            log.info("thought cache %s: space not given back yet (%s)", self.path, exc)
        finally:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        return deleted

    def close(self) -> None:
        """Write pending uses and close this thread's connection (others close with their
        threads)."""
        self.flush(wait=False)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __del__(self) -> None:  # a cache dropped before the process ends still records its uses
        try:
            self.flush(wait=False)
        except Exception:  # noqa: BLE001 - never raise from a finaliser; only eviction order is lost
            pass

    # -- recency bookkeeping -----------------------------------------------------------------
    def _counters(self) -> tuple[int, int, int]:
        return self.hits, self.misses, self.evicted

    def _record_uses(self, keys: Iterable[str], *, misses: int) -> None:
        now = time.time()
        with self._uses_lock:
            self.misses += misses
            for key in keys:
                self.hits += 1
                self._uses[key] = now
            due = bool(self._uses) and (len(self._uses) >= _FLUSH_USES or time.monotonic() - self._last_flush >= _FLUSH_SECONDS)
        if due:
            self.flush(wait=False)

    def _take_uses(self) -> dict[str, float]:
        with self._uses_lock:
            uses, self._uses = self._uses, {}
            self._last_flush = time.monotonic()
        return uses

    def _restore_uses(self, uses: dict[str, float]) -> None:
        with self._uses_lock:
            for key, when in uses.items():
                self._uses[key] = max(when, self._uses.get(key, 0.0))

    @staticmethod
    def _write_uses(conn: sqlite3.Connection, uses: dict[str, float]) -> None:
        """Inside a write transaction: record the uses, never moving a row's last use back in
        time (another process may have recorded a later one)."""
        if uses:
            conn.executemany("UPDATE thoughts SET used = MAX(COALESCE(used, created), ?) WHERE key = ?", [(when, key) for key, when in uses.items()])

    def _write_counters(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """Inside a write transaction: this process's counters, as the last process's."""
        counters = self._counters()
        hits, misses, evicted = counters
        process = {"pid": os.getpid(), "hits": hits, "misses": misses, "evicted": evicted,
                   "max_rows": self.max_rows, "since": self._since, "until": time.time()}
        conn.execute("INSERT OR REPLACE INTO cache_meta (name, value) VALUES ('last_process', ?)", (json.dumps(process),))
        return counters

    def _evict(self, conn: sqlite3.Connection) -> None:
        excess = conn.execute("SELECT COUNT(*) FROM thoughts").fetchone()[0] - self.max_rows
        if excess > 0:
            # ties (rows written together) go in the order they were written
            conn.execute(f"DELETE FROM thoughts WHERE key IN (SELECT key FROM thoughts ORDER BY {_LAST_USE}, rowid LIMIT ?)", (excess,))
            self.evicted += excess
            log.info("thought cache %s: evicted the %d least recently used rows (bound %d)", self.path, excess, self.max_rows)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file to the current schema in place (idempotent, safe between processes)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        present = {row[1] for row in conn.execute("PRAGMA table_info(thoughts)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in present:
                conn.execute(f"ALTER TABLE thoughts ADD COLUMN {name} {kind}")
        conn.execute(_LRU_INDEX)
        conn.execute(_META)
        conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@atexit.register
def _flush_open_caches() -> None:
    """Uses recorded since the last write are not lost at a normal exit (waiting for nobody)."""
    for cache in list(_open_caches):
        try:
            cache.flush(wait=False)
        except Exception:  # noqa: BLE001 - exiting anyway; losing recency only costs eviction order
            pass


# -- statistics without writing ----------------------------------------------------------------
@dataclass
class CacheStats:
    """What :func:`read_stats` reports about a cache file."""

    path: str
    rows: int
    bytes_on_disk: int  # the file and its write-ahead log
    schema: int  # 0: written by a version without eviction (migrated on the next open)
    first_use: float | None = None
    last_use: float | None = None
    origins: list[dict[str, Any]] = field(default_factory=list)  # thinker, prompt, rows
    last_process: dict[str, Any] | None = None  # pid, hits, misses, evicted, max_rows, since, until

    @property
    def last_hit_rate(self) -> float | None:
        if not self.last_process:
            return None
        total = self.last_process["hits"] + self.last_process["misses"]
        return self.last_process["hits"] / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "last_hit_rate": self.last_hit_rate}


def read_stats(path: str | Path) -> CacheStats:
    """Statistics of a cache file, read through a read-only connection: nothing is created,
    migrated or changed. Raises :class:`CacheError` if there is no readable cache at ``path``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CacheError(f"no thought cache at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_MS / 1000)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "thoughts" not in tables:
                raise CacheError(f"{path} is not a thought cache (no thoughts table)")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(thoughts)")}
            last_use = _LAST_USE if "used" in columns else "created"
            rows, first, last = conn.execute(f"SELECT COUNT(*), MIN({last_use}), MAX({last_use}) FROM thoughts").fetchone()
            origin = "thinker, prompt" if {"thinker", "prompt"} <= columns else "NULL, NULL"
            origins = [
                {"thinker": thinker, "prompt": prompt, "rows": n}
                for thinker, prompt, n in conn.execute(f"SELECT {origin}, COUNT(*) AS n FROM thoughts GROUP BY 1, 2 ORDER BY n DESC")
            ]
            last_process = None
            if "cache_meta" in tables:
                value = conn.execute("SELECT value FROM cache_meta WHERE name = 'last_process'").fetchone()
                last_process = json.loads(value[0]) if value else None
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise CacheError(f"{path} is not a readable thought cache: {exc}") from None
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return CacheStats(str(path), rows, size, schema, first, last, origins, last_process)
