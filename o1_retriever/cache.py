"""ThoughtCache: a persistent SQLite store of generated thoughts.

The key is a hash of everything that decides the thoughts: thinker identity, prompt (name,
version, text), sampling parameters, k and the query text. A hit does no generation.

SQLite in WAL mode lets many readers and one writer work at once, across threads and processes;
each thread gets its own connection. A file that SQLite cannot read is moved aside (kept for
inspection), a fresh cache is started and a warning is logged: losing cached thoughts only costs
time, while refusing to start would take retrieval down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS thoughts (key TEXT PRIMARY KEY, query TEXT NOT NULL, thoughts TEXT NOT NULL, created REAL NOT NULL)"


def cache_key(*, thinker: str, prompt: str, sampling: dict[str, Any], k: int, query: str) -> str:
    payload = json.dumps(
        {"thinker": thinker, "prompt": prompt, "sampling": sampling, "k": k, "query": query},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ThoughtCache:
    """Thread- and process-safe persistent thought cache.

    Args:
        path: SQLite file; ``":memory:"`` is not supported (use ``None`` in the embedder to
            disable caching instead).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._open_lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._check()

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "generation", None) != self._generation:
            conn = self._connect()
            self._local.conn = conn
            self._local.generation = self._generation
        return conn

    def _check(self) -> None:
        """Open the file and verify it; move a damaged file aside and start afresh."""
        with self._open_lock:
            self._generation = time.monotonic_ns()
            try:
                conn = self._connect()
                ok = conn.execute("PRAGMA quick_check").fetchone()[0]
                conn.execute("SELECT key, query, thoughts FROM thoughts LIMIT 1").fetchall()
                conn.close()
                if ok != "ok":
                    raise sqlite3.DatabaseError(ok)
            except sqlite3.DatabaseError as exc:
                self._quarantine(exc)

    def _quarantine(self, exc: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.warning("thought cache %s is unreadable (%s): moved to %s, starting a new one", self.path, exc, aside)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                p.replace(Path(str(aside) + suffix))
        self._generation = time.monotonic_ns()
        self._connect().close()

    # -- API ---------------------------------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, list[str]]:
        """Thoughts for the keys that are cached."""
        found: dict[str, list[str]] = {}
        if not keys:
            return found
        conn = self._conn()
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, thoughts in conn.execute(f"SELECT key, thoughts FROM thoughts WHERE key IN ({marks})", chunk):
                found[key] = json.loads(thoughts)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, rows: list[tuple[str, str, list[str]]]) -> None:
        """Store ``(key, query, thoughts)`` rows; an existing key keeps its first thoughts, so
        concurrent writers of the same query agree on one answer."""
        if not rows:
            return
        now = time.time()
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO thoughts (key, query, thoughts, created) VALUES (?, ?, ?, ?)",
                [(k, q, json.dumps(t, ensure_ascii=False), now) for k, q, t in rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM thoughts").fetchone()[0])

    def clear(self) -> None:
        self._conn().execute("DELETE FROM thoughts")
