"""ThoughtCache: persistence, concurrency, corruption recovery (no models)."""

from __future__ import annotations

import logging
import multiprocessing
import threading

from o1_retriever.cache import ThoughtCache, cache_key


def _key(q: str, k: int = 3) -> str:
    return cache_key(thinker="t", prompt="p", sampling={"temperature": 0.7}, k=k, query=q)


def test_key_depends_on_every_part():
    base = dict(thinker="t", prompt="p", sampling={"temperature": 0.7}, k=3, query="q")
    keys = {cache_key(**base)}
    for change in [{"thinker": "u"}, {"prompt": "p2"}, {"sampling": {"temperature": 0.1}}, {"k": 1}, {"query": "q2"}]:
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
