"""Thought cache bookkeeping (issue 13), one command:

    python benchmarks/thought_cache.py [--rows 50000] [--lookups 2000] [--writes 200]

On one cache file of ``--rows`` rows (a query and three thoughts of about 240 characters each,
the size of 64-token thoughts), side by side:

* a cached lookup, ``ThoughtCache.get_many`` of one key (the cache's share of a cached query):
  the bounded cache, which records the use and writes uses in batches, vs the same SELECT with
  no bookkeeping (what the first, unbounded version ran);
* storing one new row: the first version's INSERT vs the bounded cache with room under the bound
  (insert, read back, count), and with room vs at the bound (then evict one row);
* writing 1000 pending uses (one flush).

Also reports the bytes per row on disk, which sizes the default bound. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import string
import tempfile
import time
from pathlib import Path

from tqdm.auto import tqdm

from _common import machine, median, save, table


def _text(rng: random.Random, chars: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))))
    return " ".join(words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000, help="rows in the cache file")
    ap.add_argument("--lookups", type=int, default=2000, help="cached lookups timed per variant")
    ap.add_argument("--writes", type=int, default=200, help="single-row writes timed per variant")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    from o1_retriever.cache import ThoughtCache, cache_key

    rng = random.Random(0)
    tmp = Path(tempfile.mkdtemp(prefix="o1-cache-bench-"))
    path = tmp / "thoughts.sqlite"
    keys = [cache_key(thinker="bench", prompt="p", sampling={}, thoughts=3, query=str(i)) for i in range(args.rows)]
    cache = ThoughtCache(path, max_rows=args.rows + 3 * args.writes)  # room for every timed write
    batch = 1000
    for start in tqdm(range(0, args.rows, batch), desc="filling", unit="batch"):
        cache.put_many([(keys[i], _text(rng, 60), [_text(rng, 240) for _ in range(3)]) for i in range(start, min(start + batch, args.rows))],
                       thinker="bench", prompt="p/v1")
    cache.flush()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        used_pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    bytes_per_row = page_size * used_pages / args.rows

    probe = [rng.choice(keys) for _ in range(args.lookups)]
    bounded: list[float] = []
    plain: list[float] = []
    plain_conn = sqlite3.connect(path, isolation_level=None)
    for key in tqdm(probe, desc="lookups", unit="lookup"):  # the two take turns
        start = time.perf_counter()
        cache.get_many([key])
        bounded.append(time.perf_counter() - start)
        start = time.perf_counter()
        {k: json.loads(t) for k, t in plain_conn.execute("SELECT key, thoughts FROM thoughts WHERE key IN (?)", [key])}
        plain.append(time.perf_counter() - start)
    plain_conn.close()

    def one_row(tag: str, i: int) -> tuple[str, str, list[str]]:
        key = cache_key(thinker="bench", prompt="p", sampling={}, thoughts=3, query=f"{tag}-{i}")
        return key, _text(rng, 60), [_text(rng, 240) for _ in range(3)]

    first_conn = sqlite3.connect(path, isolation_level=None)
    full = ThoughtCache(path, max_rows=len(cache))
    first_version: list[float] = []
    room: list[float] = []
    at_bound: list[float] = []
    rounds = 10  # the three variants take turns, so a change in machine load hits them alike
    with tqdm(total=3 * args.writes, desc="writes", unit="row") as bar:
        for r in range(rounds):
            block = range(r * args.writes // rounds, (r + 1) * args.writes // rounds)
            for i in block:  # what the first version ran: one INSERT in a transaction
                key, query, thoughts = one_row("first", i)
                start = time.perf_counter()
                first_conn.execute("BEGIN IMMEDIATE")
                first_conn.execute("INSERT OR IGNORE INTO thoughts (key, query, thoughts, created) VALUES (?, ?, ?, ?)",
                                   (key, query, json.dumps(thoughts), time.time()))
                first_conn.execute("COMMIT")
                first_version.append(time.perf_counter() - start)
            full.max_rows = len(full) + len(block)  # after the "room" block, at the bound: each write evicts one row
            for store, tag, times in ((cache, "room", room), (full, "full", at_bound)):
                for i in block:
                    rows = [one_row(tag, i)]
                    start = time.perf_counter()
                    store.put_many(rows, thinker="bench", prompt="p/v1")
                    times.append(time.perf_counter() - start)
            bar.update(3 * len(block))
    first_conn.close()
    assert full.evicted == args.writes

    flushes = []
    for _ in range(5):
        full.get_many(rng.sample(keys, 1000))  # 1000 pending uses (fewer if some were evicted)
        start = time.perf_counter()
        full.flush()
        flushes.append(time.perf_counter() - start)
    cache.close()
    full.close()
    shutil.rmtree(tmp)

    us = 1e6
    def row(what: str, base: list[float], new: list[float]) -> list[str]:
        return [what, f"{median(base) * us:.0f} µs", f"{median(new) * us:.0f} µs", f"{median(new) / median(base):.2f}x"]

    rows = [
        row("cached lookup of 1 key: first version's SELECT -> bounded cache (records the use)", plain, bounded),
        row("store 1 row: first version's INSERT -> bounded cache with room under the bound", first_version, room),
        row("store 1 row: room under the bound -> at the bound (evicts 1 row)", room, at_bound),
    ]
    print(f"\nmachine: {machine()}; {args.rows:,} rows, {bytes_per_row:.0f} bytes per row on disk "
          f"(the default bound of 200,000 rows is about {bytes_per_row * 200_000 / 1e6:.0f} MB)\n")
    print(table(["operation: baseline -> measured", "baseline (median)", "measured (median)", "ratio"], rows))
    print(f"\nflush of 1000 recorded uses: {median(flushes) * 1e3:.1f} ms (median of {len(flushes)})")
    save(args.json, {
        "rows": args.rows, "bytes_per_row": bytes_per_row,
        "lookup_plain_us": median(plain) * us, "lookup_bounded_us": median(bounded) * us,
        "write_first_version_us": median(first_version) * us, "write_room_us": median(room) * us, "write_at_bound_us": median(at_bound) * us,
        "flush_1000_ms": median(flushes) * 1e3,
    })


if __name__ == "__main__":
    main()
