"""ThoughtCache: persistence, concurrency, corruption recovery, the LRU bound, migration of old
files, stats and clear (no models)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from o1_retriever.cache import ThoughtCache, cache_key, read_stats
from o1_retriever.errors import CacheError


def _key(q: str, k: int = 3) -> str:
    return cache_key(thinker="t", prompt="p", sampling={"temperature": 0.7}, thoughts=k, query=q)


def test_key_depends_on_every_part():
    base = dict(thinker="t", prompt="p", sampling={"temperature": 0.7}, thoughts=3, query="q")
    keys = {cache_key(**base)}
    for change in [{"thinker": "u"}, {"prompt": "p2"}, {"sampling": {"temperature": 0.1}}, {"thoughts": 1}, {"query": "q2"}]:
        keys.add(cache_key(**{**base, **change}))
    assert len(keys) == 6


def test_round_trip_and_persistence(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ThoughtCache(path)
    cache.put_many([(_key("a"), "a", ["x", "y"])])
    assert ThoughtCache(path).get_many([_key("a"), _key("b")]) == {_key("a"): ["x", "y"]}


def test_first_writer_wins(tmp_path):
    cache = ThoughtCache(tmp_path / "c.sqlite")
    cache.put_many([(_key("a"), "a", ["first"])])
    cache.put_many([(_key("a"), "a", ["second"])])
    assert cache.get_many([_key("a")])[_key("a")] == ["first"]


def test_concurrent_threads(tmp_path):
    cache = ThoughtCache(tmp_path / "c.sqlite")

    def work(n):
        for i in range(50):
            cache.put_many([(_key(f"q{i}"), f"q{i}", [f"writer{n}"])])
            assert _key(f"q{i}") in cache.get_many([_key(f"q{i}")])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50
    values = cache.get_many([_key(f"q{i}") for i in range(50)])
    assert all(len(v) == 1 and v[0].startswith("writer") for v in values.values())


def _writer(path: str, n: int) -> None:
    cache = ThoughtCache(path)
    for i in range(100):
        cache.put_many([(_key(f"q{i}"), f"q{i}", [f"p{n}"])])


def test_concurrent_processes(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(ThoughtCache(path)) == 100


def test_corrupted_file_is_moved_aside_and_rebuilt(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a sqlite database" * 100)
    with caplog.at_level(logging.WARNING):
        cache = ThoughtCache(path)
    assert "unreadable" in caplog.text
    assert list(tmp_path.glob("c.sqlite.corrupt-*"))
    cache.put_many([(_key("a"), "a", ["ok"])])
    assert cache.get_many([_key("a")]) == {_key("a"): ["ok"]}


# -- the bound: least-recently-used eviction ---------------------------------------------------
def _keys(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM thoughts")}


def test_eviction_keeps_the_recently_used_rows_under_the_bound(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ThoughtCache(path, max_rows=5)
    for i in range(5):  # k0 is the oldest row, k4 the newest
        cache.put_many([(_key(f"k{i}"), f"k{i}", [f"t{i}"])])
    assert cache.get_many([_key("k0"), _key("k1")])  # the two oldest rows are used again
    cache.put_many([(_key("k5"), "k5", ["t5"]), (_key("k6"), "k6", ["t6"])])
    assert len(cache) == 5 and cache.evicted == 2
    assert _keys(path) == {_key(q) for q in ("k0", "k1", "k4", "k5", "k6")}  # k2, k3: least recently used


def test_a_read_does_not_write_until_the_uses_are_flushed(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    cache = ThoughtCache(path)
    cache.put_many([(_key("a"), "a", ["x"])])

    def last_use() -> float:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT used FROM thoughts").fetchone()[0]

    written = last_use()
    time.sleep(0.01)
    cache.get_many([_key("a")])
    assert last_use() == written  # the use waits in memory: a cached query does no write
    assert cache.flush()
    assert last_use() > written
    monkeypatch.setattr("o1_retriever.cache._FLUSH_SECONDS", 0.0)  # throttle elapsed: the next read writes
    time.sleep(0.01)
    before = last_use()
    cache.get_many([_key("a")])
    assert last_use() > before


def _read_and_exit(path: str, query: str) -> None:
    ThoughtCache(path).get_many([_key(query)])  # the use is written at exit


def test_uses_recorded_in_one_process_protect_rows_from_eviction_in_another(tmp_path):
    path = str(tmp_path / "c.sqlite")
    writer = ThoughtCache(path, max_rows=3)
    writer.put_many([(_key(q), q, [q]) for q in ("old", "mid", "new")])
    reader = multiprocessing.get_context("spawn").Process(target=_read_and_exit, args=(path, "old"))
    reader.start()
    reader.join(60)
    assert reader.exitcode == 0
    writer.put_many([(_key("newest"), "newest", ["n"])])
    assert _keys(path) == {_key(q) for q in ("old", "new", "newest")}


def _write_many(path: str, n: int) -> None:
    cache = ThoughtCache(path, max_rows=50)
    for i in range(100):
        cache.put_many([(_key(f"p{n}-q{i}"), f"q{i}", [f"p{n}"])])
        cache.get_many([_key(f"p{n}-q{max(i - 3, 0)}")])


def test_processes_writing_past_the_bound_leave_exactly_the_bound(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(ThoughtCache(path, max_rows=50)) == 50


# -- files written before the bound ------------------------------------------------------------
_OLD_SCHEMA = "CREATE TABLE IF NOT EXISTS thoughts (key TEXT PRIMARY KEY, query TEXT NOT NULL, thoughts TEXT NOT NULL, created REAL NOT NULL)"
_OLD_INSERT = "INSERT OR IGNORE INTO thoughts (key, query, thoughts, created) VALUES (?, ?, ?, ?)"


def _old_cache(path, rows: int) -> None:
    """A cache file exactly as the first (unbounded) version wrote it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(_OLD_SCHEMA)
    conn.executemany(_OLD_INSERT, [(_key(f"q{i}"), f"q{i}", json.dumps([f"thought {i}", ""]), 1000.0 + i) for i in range(rows)])
    conn.close()


def test_the_key_of_existing_thinkers_and_prompts_is_unchanged():
    sampling = {"max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9, "seed": 0}
    key = cache_key(thinker="transformers:smollm2", prompt="passage/v1/chat:x", sampling=sampling, thoughts=3, query="Why is the sky blue?")
    assert key == "7e69b20bd98d165893c774cab1ee895f5e70315889dc31d9712732d8cb9e54f6"  # as the first version computed it


def test_k_is_a_deprecated_alias_of_thoughts_with_the_same_key():
    """``k=`` (the first versions' name) gives the very key ``thoughts=`` gives, which the first
    version computed: existing caches keep hitting whichever name a caller uses."""
    sampling = {"max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9, "seed": 0}
    with pytest.warns(DeprecationWarning, match="cache_key: k= is deprecated, pass thoughts= instead"):
        key = cache_key(thinker="transformers:smollm2", prompt="passage/v1/chat:x", sampling=sampling, k=3, query="Why is the sky blue?")
    assert key == "7e69b20bd98d165893c774cab1ee895f5e70315889dc31d9712732d8cb9e54f6"
    with pytest.raises(TypeError, match="both thoughts= and k="):
        cache_key(thinker="t", prompt="p", sampling={}, thoughts=1, k=1, query="q")
    with pytest.raises(TypeError, match="needs thoughts="):
        cache_key(thinker="t", prompt="p", sampling={}, query="q")


def test_an_old_file_is_migrated_in_place_keeping_every_row_and_key(tmp_path):
    path = tmp_path / "c.sqlite"
    _old_cache(path, 300)
    cache = ThoughtCache(path, max_rows=1000)
    got = cache.get_many([_key(f"q{i}") for i in range(300)])
    assert got == {_key(f"q{i}"): [f"thought {i}", ""] for i in range(300)}
    with sqlite3.connect(path) as conn:
        assert {row[1] for row in conn.execute("PRAGMA table_info(thoughts)")} >= {"used", "thinker", "prompt"}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        conn.execute(_OLD_INSERT, (_key("by old code"), "by old code", '["x"]', 2000.0))  # a process still on the old code
    assert ThoughtCache(path).get_many([_key("by old code")]) == {_key("by old code"): ["x"]}
    assert len(ThoughtCache(path)) == 301


def test_rows_of_an_old_file_are_evicted_by_their_creation_time(tmp_path):
    path = tmp_path / "c.sqlite"
    _old_cache(path, 10)  # q0 created first ... q9 last
    cache = ThoughtCache(path, max_rows=10)
    cache.get_many([_key("q0")])  # used now: newer than any creation time
    cache.put_many([(_key("fresh"), "fresh", ["f"])])
    assert _keys(path) == {_key(f"q{i}") for i in (0, 2, 3, 4, 5, 6, 7, 8, 9)} | {_key("fresh")}  # q1 went


def test_a_locked_file_is_reported_not_moved_aside(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    _old_cache(path, 3)
    monkeypatch.setattr("o1_retriever.cache._BUSY_MS", 200)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the busy timeout
    try:
        with pytest.raises(CacheError, match="could not be updated"):
            ThoughtCache(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert len(ThoughtCache(path)) == 3


def test_a_file_kept_locked_by_another_program_is_reported_not_moved_aside(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute(_OLD_SCHEMA)
    holder.execute(_OLD_INSERT, (_key("a"), "a", '["x"]', 1.0))
    holder.execute("BEGIN EXCLUSIVE")  # a rollback-journal file: even reading waits for this lock
    monkeypatch.setattr("o1_retriever.cache._BUSY_MS", 200)
    try:
        with pytest.raises(CacheError, match="stayed locked"):
            ThoughtCache(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert ThoughtCache(path).get_many([_key("a")]) == {_key("a"): ["x"]}


def test_a_write_blocked_by_another_writer_is_a_cache_error_and_keeps_the_uses(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    cache = ThoughtCache(path)
    cache.put_many([(_key("a"), "a", ["x"])])
    assert cache.get_many([_key("a")]) == {_key("a"): ["x"]}  # a use, pending until the next write
    monkeypatch.setattr("o1_retriever.cache._BUSY_MS", 200)
    cache._local.__dict__.clear()  # reconnect with the short busy timeout
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the busy timeout
    try:
        with pytest.raises(CacheError, match="stayed locked"):
            cache.put_many([(_key("b"), "b", ["y"])])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cache._take_uses()  # the pending use survived the failed write


# -- statistics and clearing -------------------------------------------------------------------
def test_stats_of_an_old_file_change_nothing(tmp_path):
    path = tmp_path / "c.sqlite"
    _old_cache(path, 4)
    before = path.read_bytes()
    stats = read_stats(path)
    assert (stats.rows, stats.schema, stats.last_process) == (4, 0, None)
    assert (stats.first_use, stats.last_use) == (1000.0, 1003.0)
    assert stats.origins == [{"thinker": None, "prompt": None, "rows": 4}]
    assert path.read_bytes() == before
    with pytest.raises(CacheError, match="no thought cache at"):
        read_stats(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_stats_report_origins_bound_and_the_last_process_hit_rate(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ThoughtCache(path, max_rows=7)
    cache.put_many([(_key(f"a{i}"), f"a{i}", ["x"]) for i in range(3)], thinker="transformers:smollm2", prompt="passage/v1")
    cache.put_many([(_key("b"), "b", ["y"])], thinker="openai:qwen3@http://gpu/v1", prompt="paper/v1")
    cache.get_many([_key("a0"), _key("a1"), _key("a2"), _key("nope")])
    cache.flush()
    stats = read_stats(path)
    assert stats.rows == 4
    assert stats.origins == [{"thinker": "transformers:smollm2", "prompt": "passage/v1", "rows": 3},
                             {"thinker": "openai:qwen3@http://gpu/v1", "prompt": "paper/v1", "rows": 1}]
    assert stats.last_process["max_rows"] == 7 and stats.last_hit_rate == 0.75
    assert stats.to_dict()["last_hit_rate"] == 0.75


def _cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "O1_RETRIEVER_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "o1_retriever.cli", *args], capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)


def test_cli_cache_stats_and_clear(tmp_path):
    home = tmp_path / "home"
    missing = _cli("cache", "stats", home=home)
    assert missing.returncode == 2 and "no thought cache at" in missing.stderr and "Traceback" not in missing.stderr
    assert not home.exists()  # nothing was created
    cache = ThoughtCache(home / "thoughts.sqlite")  # the default file
    cache.put_many([(_key(f"q{i}"), f"q{i}", ["x"]) for i in range(3)], thinker="transformers:smollm2", prompt="passage/v1")
    stats = _cli("cache", "stats", "--json", home=home)
    assert stats.returncode == 0, stats.stderr
    payload = json.loads(stats.stdout)
    assert payload["rows"] == 3 and payload["origins"] == [{"thinker": "transformers:smollm2", "prompt": "passage/v1", "rows": 3}]
    table = _cli("cache", "stats", "--cache", str(home / "thoughts.sqlite"), home=tmp_path / "elsewhere")
    assert table.returncode == 0 and "transformers:smollm2" in table.stdout and "passage/v1" in table.stdout
    refused = _cli("cache", "clear", home=home)  # not a terminal, no --yes
    assert refused.returncode == 2 and "pass --yes" in refused.stderr and len(cache) == 3
    cleared = _cli("cache", "clear", "--yes", home=home)
    assert cleared.returncode == 0 and "3 rows" in cleared.stderr
    assert len(cache) == 0


def test_a_waiting_flush_blocked_by_another_writer_is_a_cache_error_and_keeps_the_uses(tmp_path, monkeypatch):
    """Both write paths (put_many, flush) end their transaction in one place and fail alike:
    a CacheError, never a raw sqlite3.OperationalError (issue 18)."""
    path = tmp_path / "c.sqlite"
    cache = ThoughtCache(path)
    cache.put_many([(_key("a"), "a", ["x"])])
    assert cache.get_many([_key("a")]) == {_key("a"): ["x"]}  # a use, pending until the next write
    monkeypatch.setattr("o1_retriever.cache._BUSY_MS", 200)
    cache._local.__dict__.clear()  # reconnect with the short busy timeout
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert cache.flush(wait=False) is False  # not waited for
        with pytest.raises(CacheError, match="stayed locked"):
            cache.flush()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cache._take_uses()  # the pending use survived both failed writes
