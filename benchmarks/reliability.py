"""Reliability figures (issues 6 and 13), one command:

    python benchmarks/reliability.py [--sections bad,kill,concurrency,restart,soak] [--docs 2000]
        [--batch-size 200] [--kills 3] [--threads 8] [--soak-repeated 10000] [--soak-new 1000]

1. Bad inputs: a catalogue of bad queries, files, collections, caches and thinkers, each run
   against the real core; the outcome is the error class and message, or the documented handling.
2. Kill/resume: ``o1-retriever index`` on a generated corpus is SIGKILLed ``--kills`` times after a
   new batch landed, then run to the end; documents lost, duplicated, and the largest vector
   difference from an uninterrupted index are reported.
3. Concurrency: the same searches (with thinking) from ``--threads`` threads and as many asyncio
   tasks on one shared retriever, compared with sequential calls.
4. Server restart: Chroma's Python server (``uvicorn chromadb.app:app``, persistent) is restarted
   (``--restart-modes``: ``term`` = graceful SIGTERM, ``kill`` = SIGKILL crash) while 4 client
   threads search and one ``o1-retriever index --host`` subprocess indexes; every search result is
   checked against the answer before the restart; the indexer is rerun and the collection checked.
5. Soak: in this one process, ``--soak-repeated`` searches with thinking over 8 questions whose
   thoughts are cached, then ``--soak-new`` searches of distinct new questions without thinking;
   RSS growth and latency percentiles.

Real parts only: SmolLM2 / MiniLM offline models, embedded Chroma, a real Chroma server, real
subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import httpx
import numpy as np
import psutil
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tqdm.auto import tqdm

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

console = Console(width=150)
QUERIES = [
    "Which metal is liquid at room temperature?",
    "Why is the sky blue?",
    "How do bees tell each other where flowers are?",
    "What causes ocean tides?",
    "How do plants turn light into sugar?",
    "Why do volcanoes erupt?",
    "How do vaccines train the immune system?",
    "How long is the Great Wall of China?",
]


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# -- 1. bad inputs ----------------------------------------------------------------------------------
def bad_inputs(work: Path, plain, thinker, encoder) -> list[tuple[str, str, bool]]:
    import chromadb

    from o1_retriever import O1RetrieverError, SamplingConfig, ThinkingEmbedder, ThoughtCache
    from o1_retriever.index import ChromaIndex, Document, SourceReport, read_source
    from o1_retriever.thinkers.openai import OpenAIThinker

    work.mkdir(parents=True)
    db = work / "db"
    log = Captured()
    logger = logging.getLogger("o1_retriever")
    logger.addHandler(log)
    logger.setLevel(logging.WARNING)

    def folder(name: str, files_: dict[str, bytes]) -> Path:
        path = work / name
        path.mkdir()
        for fname, data in files_.items():
            (path / fname).write_bytes(data)
        return path

    def read(path: Path) -> str:
        report = SourceReport()
        docs = list(read_source(path, report))
        return f"{len(docs)} docs; repaired {report.repaired}; skipped {report.skipped}"

    def long_query() -> str:
        v = plain.embed_query("why does the tide rise " * 400)
        return f"vector {v.shape}; warned: {log.messages[-1][:70]}"

    def duplicates() -> str:
        stats = ChromaIndex("dups", plain, path=db).add([Document("a", "one"), Document("a", "two"), Document("b", "x")], show_progress=False)
        return f"kept first; {stats.duplicates} reported"

    def other_embedder() -> str:
        client = chromadb.PersistentClient(str(db))
        fp = json.dumps({"encoder": "sentence-transformers:BAAI/bge-small-en-v1.5", "dimension": 384}, sort_keys=True)
        client.create_collection("foreign", embedding_function=None, metadata={"hnsw:space": "cosine", "o1_fingerprint": fp})
        ChromaIndex("foreign", plain, client=client)
        return "accepted (wrong)"

    def dimension() -> str:
        client = chromadb.PersistentClient(str(db))
        col = client.create_collection("handmade", embedding_function=None)
        col.add(ids=["x"], embeddings=[[0.1, 0.2, 0.3]], documents=["three dims"])
        ChromaIndex("handmade", plain, client=client).search("anything", thinking=False)
        return "accepted (wrong)"

    def corrupt_cache() -> str:
        path = work / "thoughts.sqlite"
        path.write_bytes(b"not a database" * 100)
        cache = ThoughtCache(path)
        aside = sorted(p.name for p in work.glob("thoughts.sqlite.corrupt-*"))
        return f"moved aside to {aside[0]}, new cache holds {len(cache)}"

    def thinker_down(strict: bool):
        def run() -> str:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]  # closed again: connection refused
            t = OpenAIThinker(f"http://127.0.0.1:{port}/v1", "m", retries=2, backoff=0.05)
            r = ChromaIndex("docs", ThinkingEmbedder(t, encoder, strict=strict), path=db).search(QUERIES[0], k=1)
            return f"fallback={r.fallback}, top hit {r.hits[0].id}"
        return run

    def thinker_hangs() -> str:
        with socket.socket() as s:  # listens but never answers: the request times out
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            t = OpenAIThinker(f"http://127.0.0.1:{s.getsockname()[1]}/v1", "m", timeout=0.5, retries=1, backoff=0.05)
            started = time.monotonic()
            q = ThinkingEmbedder(t, encoder).embed_query(QUERIES[1], return_thoughts=True)
            return f"fallback={q.fallback} after {time.monotonic() - started:.1f}s (2 tries x 0.5s timeout)"

    def generation_error() -> str:
        from transformers import GPT2Config, GPT2LMHeadModel

        from o1_retriever.thinkers.transformers import TransformersThinker

        tok = thinker.tokenizer
        cfg = GPT2Config(n_positions=8, n_embd=16, n_layer=1, n_head=2, vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        tiny = TransformersThinker((GPT2LMHeadModel(cfg).eval(), tok), name="tiny-gpt2")
        q = ThinkingEmbedder(tiny, encoder, thoughts=1, sampling=SamplingConfig(max_new_tokens=4)).embed_query(QUERIES[2], return_thoughts=True)
        return f"fallback={q.fallback}; logged: {log.messages[-1][:60]}"

    def collision() -> str:
        from o1_retriever.index import source_id

        index = ChromaIndex("shared", plain, path=db)
        for name in ("A", "B"):
            notes = folder(name, {"notes.md": f"folder {name} notes".encode()})
            index.add(read_source(notes), source=source_id(notes), sync=True, show_progress=False)
        return "overwritten (wrong)"

    ChromaIndex("docs", plain, path=db).add(read_source(Path(str(files("o1_retriever") / "data" / "sample_corpus"))), show_progress=False)
    cases = [
        ("empty query", lambda: plain.embed_query("")),
        ("whitespace-only query", lambda: plain.embed_query(" \n\t ")),
        ("non-string query (42)", lambda: plain.embed_query(42)),
        ("query with a lone surrogate", lambda: plain.embed_query("caf\udce9")),
        ("query of ~2000 tokens", long_query),
        ("file with control characters", lambda: read(folder("ctrl", {"a.md": b"bell \x07 escape \x1b[31m red"}))),
        ("file with invalid UTF-8", lambda: read(folder("latin1", {"a.txt": b"caf\xe9 au lait"}))),
        ("jsonl line with invalid UTF-8", lambda: read(folder("beir-bytes", {"corpus.jsonl": b'{"_id": "a", "text": "caf\xe9"}\n'}))),
        ("empty corpus (blank files)", lambda: read(folder("empty", {"a.md": b" \n "}))),
        ("duplicate ids in one batch", duplicates),
        ("BEIR folder without corpus.jsonl", lambda: read(folder("beir-missing", {"queries.jsonl": b'{"_id": "q", "text": "?"}\n'}))),
        ("BEIR corpus, malformed line 2", lambda: read(folder("beir-bad", {"corpus.jsonl": b'{"_id": "a", "text": "ok"}\n{"_id": \n'}))),
        ("collection of another embedder", other_embedder),
        ("hand-made collection, 3-d vectors", dimension),
        ("collection name 'x'", lambda: ChromaIndex("x", plain, path=db)),
        ("corrupted thought cache", corrupt_cache),
        ("thinker server down", thinker_down(strict=False)),
        ("thinker server down, strict", thinker_down(strict=True)),
        ("thinker server hangs", thinker_hangs),
        ("generation error (transformers)", generation_error),
        ("Chroma server unreachable", lambda: ChromaIndex("docs", plain, host="127.0.0.1", port=9, retries=1)),
        ("search of a collection that does not exist", lambda: ChromaIndex("doc", plain, path=db, create=False)),
        ("search of a database folder that does not exist", lambda: ChromaIndex("docs", plain, path=work / "nowhere", create=False)),
        ("folder B's notes.md where folder A's is", collision),
    ]
    rows = []
    for name, case in tqdm(cases, desc="bad inputs", unit="case"):
        try:
            outcome, ok = f"handled: {case()}", True
        except O1RetrieverError as exc:
            outcome, ok = f"{type(exc).__name__}: {exc}", True
        except Exception as exc:  # noqa: BLE001 - anything else is a failure of this benchmark
            outcome, ok = f"UNEXPECTED {type(exc).__name__}: {exc}", False
        ok = ok and "(wrong)" not in outcome
        rows.append((name, outcome, ok))
    logger.removeHandler(log)
    logger.setLevel(logging.NOTSET)
    return rows


# -- 2. kill / resume ---------------------------------------------------------------------------------
def write_corpus(path: Path, n: int) -> None:
    rng = random.Random(0)
    words = "tide moon ocean gravity metal liquid mercury bee dance flower sky blue light scatter volcano lava coffee bean chess".split()
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"_id": f"doc-{i}", "title": f"Note {i}", "text": " ".join(rng.choice(words) for _ in range(rng.randint(8, 24)))}) + "\n")


def index_process(corpus: Path, db: Path, batch: int) -> subprocess.Popen:
    args = ["index", str(corpus), "--collection", "kill", "--db", str(db), "--encoder", "minilm", "--thinker", "none", "--batch-size", str(batch)]
    return subprocess.Popen([sys.executable, "-m", "o1_retriever.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def count(db: Path, plain) -> int:
    from chromadb.api.client import SharedSystemClient

    from o1_retriever.index import ChromaIndex

    n = ChromaIndex("kill", plain, path=db).count()
    SharedSystemClient.clear_system_cache()  # another process writes there next
    return n


def kill_resume(work: Path, plain, n_docs: int, batch: int, kills: int) -> dict:
    from chromadb.api.client import SharedSystemClient

    from o1_retriever.index import ChromaIndex, read_source

    work.mkdir(parents=True)
    corpus, db = work / "corpus.jsonl", work / "interrupted"
    write_corpus(corpus, n_docs)
    stored, at_kill = 0, []
    for _ in tqdm(range(kills), desc="kill/resume", unit="kill"):
        proc = index_process(corpus, db, batch)
        seen = bytearray()
        threading.Thread(target=lambda: [seen.extend(c) for c in iter(lambda: proc.stderr.read1(256), b"")], daemon=True).start()
        target = stored + batch  # at least one new batch committed by this run
        while proc.poll() is None:
            shown = [int(x) for x in re.findall(rb"(\d+)doc", bytes(seen))]
            if shown and max(shown) >= target:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait()
        killed = proc.returncode == -signal.SIGKILL
        stored = count(db, plain)
        at_kill.append((stored, killed))
    final = subprocess.run(
        [sys.executable, "-m", "o1_retriever.cli", "index", str(corpus), "--collection", "kill", "--db", str(db),
         "--encoder", "minilm", "--thinker", "none", "--batch-size", str(batch)],
        capture_output=True, text=True,
    )
    resumed = ChromaIndex("kill", plain, path=db).collection.get(include=["embeddings"])
    clean = ChromaIndex("kill", plain, path=work / "uninterrupted")
    clean.add(read_source(corpus), batch_size=batch, show_progress=True)
    want = clean.collection.get(ids=resumed["ids"], include=["embeddings"])
    SharedSystemClient.clear_system_cache()
    ids = resumed["ids"]
    return {
        "docs": n_docs,
        "kills": sum(k for _, k in at_kill),
        "stored_at_each_kill": [s for s, _ in at_kill],
        "final_exit": final.returncode,
        "stored": len(ids),
        "unique": len(set(ids)),
        "lost": n_docs - len(set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "max_abs_diff": float(np.abs(np.asarray(resumed["embeddings"]) - np.asarray(want["embeddings"])).max()),
    }


# -- 3. concurrency -----------------------------------------------------------------------------------
def concurrency(work: Path, thinker, encoder, threads: int, tokens: int, thoughts: int, n_queries: int) -> dict:
    from o1_retriever import SamplingConfig, ThinkingEmbedder
    from o1_retriever.index import ChromaIndex, read_source

    work.mkdir(parents=True)
    sampling = SamplingConfig(max_new_tokens=tokens)
    make = lambda cache: ThinkingEmbedder(thinker, encoder, thoughts=thoughts, sampling=sampling, cache=work / cache)
    index = ChromaIndex("docs", make("seq.sqlite"), path=work / "db")
    index.add(read_source(Path(str(files("o1_retriever") / "data" / "sample_corpus"))), show_progress=False)
    t0 = time.monotonic()
    queries = QUERIES[:n_queries]
    expected = {q: index.search(q, k=5) for q in tqdm(queries, desc="sequential", unit="query")}
    sequential_s = time.monotonic() - t0
    shared = ChromaIndex("docs", make("shared.sqlite"), path=work / "db")  # empty cache: threads generate
    jobs = [queries[i % len(queries)] for i in range(2 * threads)]

    def same(q, got) -> bool:
        want = expected[q]
        return got.thoughts == want.thoughts and [h.id for h in got.hits] == [h.id for h in want.hits] and np.allclose(
            [h.score for h in got.hits], [h.score for h in want.hits], atol=1e-5)

    t0 = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        thread_results = list(pool.map(lambda q: shared.search(q, k=5), jobs))
    threads_s = time.monotonic() - t0

    async def tasks():
        return await asyncio.gather(*(asyncio.to_thread(shared.search, q, 5) for q in jobs[:threads]))

    t0 = time.monotonic()
    task_results = asyncio.run(tasks())
    tasks_s = time.monotonic() - t0
    return {
        "threads": threads,
        "thoughts": thoughts,
        "tokens": tokens,
        "thread_calls": len(jobs),
        "thread_identical": sum(same(q, r) for q, r in zip(jobs, thread_results)),
        "task_calls": threads,
        "task_identical": sum(same(q, r) for q, r in zip(jobs, task_results)),
        "cache_rows": len(shared.embedder.cache),
        "distinct_queries": len(queries),
        "sequential_s": sequential_s,
        "threads_s": threads_s,
        "tasks_s": tasks_s,
    }


# -- 4. server restart ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """``uvicorn chromadb.app:app`` on a fixed loopback port and persistent folder."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder, self.proc = free_port(), folder, None
        self.env = {**os.environ, "IS_PERSISTENT": "1", "PERSIST_DIRECTORY": str(folder / "data"), "ANONYMIZED_TELEMETRY": "False"}

    def start(self) -> float:
        """Start and wait until it answers; returns the seconds that took."""
        started = time.monotonic()
        cmd = [sys.executable, "-m", "uvicorn", "chromadb.app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=(self.folder / "server.log").open("ab"), stderr=subprocess.STDOUT)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"Chroma server exited: {(self.folder / 'server.log').read_text()[-2000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1)
                return time.monotonic() - started
            except httpx.TransportError:
                time.sleep(0.1)

    def stop(self, mode: str = "term") -> None:
        self.proc.kill() if mode == "kill" else self.proc.terminate()
        self.proc.wait(30)


def server_restart(work: Path, plain, mode: str, n_docs: int, retries: int) -> dict:
    from o1_retriever import ServerError
    from o1_retriever.index import ChromaIndex, read_source

    work.mkdir(parents=True)
    server = ChromaServer(work)
    server.start()
    try:
        port = server.port
        ChromaIndex("docs", plain, host="127.0.0.1", port=port).add(read_source(Path(str(files("o1_retriever") / "data" / "sample_corpus"))), show_progress=False)
        queries = QUERIES[:4]
        reader = ChromaIndex("docs", plain, host="127.0.0.1", port=port, create=False)
        expected = {q: reader.search(q, k=5, thinking=False) for q in queries}
        corpus = work / "corpus.jsonl"
        write_corpus(corpus, n_docs)
        cmd = [sys.executable, "-m", "o1_retriever.cli", "index", str(corpus), "--collection", "growing", "--host", "127.0.0.1",
               "--port", str(port), "--encoder", "minilm", "--thinker", "none", "--batch-size", "100"]
        indexer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log = bytearray()
        threading.Thread(target=lambda: [log.extend(c) for c in iter(lambda: indexer.stderr.read1(256), b"")], daemon=True).start()
        calls: list[tuple[int, float, float, object]] = []
        done = threading.Event()

        def client(n: int) -> None:
            index = ChromaIndex("docs", plain, host="127.0.0.1", port=port, create=False, retries=retries)
            while not done.is_set():
                t0 = time.monotonic()
                try:
                    outcome: object = index.search(queries[n], k=5, thinking=False)
                except Exception as exc:  # noqa: BLE001 - judged below
                    outcome = exc
                calls.append((n, t0, time.monotonic(), outcome))
                time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
        for t in threads:
            t.start()
        while not re.findall(rb"(\d{3,})doc", bytes(log)) and indexer.poll() is None:
            time.sleep(0.05)
        down = time.monotonic()
        server.stop(mode)
        time.sleep(1.0)
        boot = server.start()
        up = time.monotonic()
        while time.monotonic() < up + 5 or not all(any(c[0] == n and c[1] > up for c in calls) for n in range(4)):
            time.sleep(0.2)
        done.set()
        for t in threads:
            t.join(60)
        indexer.wait()

        def right(n: int, got: object) -> bool:
            want = expected[queries[n]]
            return hasattr(got, "hits") and [h.id for h in got.hits] == [h.id for h in want.hits] and bool(
                np.allclose([h.score for h in got.hits], [h.score for h in want.hits], atol=1e-5))

        across = [c for c in calls if c[1] < up and c[2] > down]
        rerun = subprocess.run(cmd, capture_output=True, text=True)
        got = ChromaIndex("growing", plain, host="127.0.0.1", port=port, create=False).collection.get(include=[])
        return {
            "mode": mode,
            "down_s": up - down,
            "boot_s": boot,
            "searches": len(calls),
            "right": sum(right(n, c) for n, _, _, c in calls),
            "server_errors": sum(isinstance(c, ServerError) for *_, c in calls),
            "wrong": sum(not right(n, c) and not isinstance(c, ServerError) for n, _, _, c in calls),
            "across_restart": len(across),
            "across_right": sum(right(n, c) for n, _, _, c in across),
            "longest_call_s": max(e - s for _, s, e, _ in calls),
            "indexer_exit": indexer.returncode,
            "indexer_error": next((line for line in bytes(log).decode(errors="replace").splitlines() if "error:" in line), ""),
            "rerun_exit": rerun.returncode,
            "stored": len(got["ids"]),
            "lost": n_docs - len(set(got["ids"])),
            "duplicated": len(got["ids"]) - len(set(got["ids"])),
        }
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


# -- 5. soak ---------------------------------------------------------------------------------------------
def soak(work: Path, repeated: int, new: int) -> dict:
    from o1_retriever import EmbedderConfig, ThinkingEmbedder
    from o1_retriever.index import ChromaIndex, read_source

    work.mkdir(parents=True)
    process = psutil.Process()
    with console.status("loading the default models (ThinkingEmbedder.from_config)"):
        embedder = ThinkingEmbedder.from_config(EmbedderConfig(cache=str(work / "thoughts.sqlite")))
    index = ChromaIndex("soak", embedder, path=work / "db")
    index.add(read_source(Path(str(files("o1_retriever") / "data" / "sample_corpus"))), show_progress=False)
    for q in tqdm(QUERIES, desc="soak: thinking once per question", unit="query"):
        index.search(q, k=5)  # generates and caches the thoughts
    index.search("warm-up without thinking", k=5, thinking=False)
    rss = [process.memory_info().rss]

    def run(label: str, queries: list[str], thinking: bool) -> list[float]:
        times = []
        for q in tqdm(queries, desc=label, unit="search"):
            t0 = time.perf_counter()
            index.search(q, k=5, thinking=thinking)
            times.append(time.perf_counter() - t0)
        rss.append(process.memory_info().rss)
        return times

    cached = run("soak: cached thinking", [QUERIES[i % len(QUERIES)] for i in range(repeated)], True)
    rng = random.Random(0)
    words = "tide moon ocean gravity metal liquid mercury bee dance flower sky blue light volcano lava coffee chess glacier river".split()
    fresh = run("soak: new questions, no thinking", [f"question {i}: why {' '.join(rng.choice(words) for _ in range(6))}?" for i in range(new)], False)
    mb = 1024 * 1024
    pct = lambda xs, p: float(np.percentile(np.asarray(xs) * 1000, p))  # noqa: E731
    return {
        "repeated": repeated,
        "new": new,
        "rss_start_mb": rss[0] / mb,
        "rss_after_repeated_mb": rss[1] / mb,
        "rss_after_new_mb": rss[2] / mb,
        "growth_mb": (rss[2] - rss[0]) / mb,
        "cached_p50_ms": pct(cached, 50),
        "cached_p99_ms": pct(cached, 99),
        "new_p50_ms": pct(fresh, 50),
        "new_p99_ms": pct(fresh, 99),
        "cache_rows": len(embedder.cache),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="bad,kill,concurrency,restart,soak", help="comma-separated: bad, kill, concurrency, restart, soak")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=8, help="thought length in the concurrency test")
    parser.add_argument("--thoughts", type=int, default=2, help="thoughts per query in the concurrency test")
    parser.add_argument("--queries", type=int, default=4, help="distinct queries in the concurrency test (each asked several times)")
    parser.add_argument("--restarts", default="term:6,kill:6,kill:1", help="server restarts to run, MODE:RETRIES each: term (graceful SIGTERM) or kill (SIGKILL crash), with the searching clients' ChromaIndex(retries=...) (6 is the default)")
    parser.add_argument("--restart-docs", type=int, default=1500, help="documents the indexer writes during the restart")
    parser.add_argument("--soak-repeated", type=int, default=10_000)
    parser.add_argument("--soak-new", type=int, default=1_000)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    from o1_retriever import ThinkingEmbedder
    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
    from o1_retriever.thinkers.transformers import TransformersThinker

    logging.basicConfig(level=logging.ERROR)
    work = args.work or Path(tempfile.mkdtemp(prefix="o1-reliability-"))
    with console.status("loading models"):
        encoder = SentenceTransformerEncoder("minilm")
        thinker = TransformersThinker("smollm2") if sections & {"bad", "concurrency"} else None
    plain = ThinkingEmbedder(None, encoder)
    figures: dict = {}
    good = True

    if "bad" in sections:
        rows = bad_inputs(work / "bad", plain, thinker, encoder)
        table = Table(title=f"bad inputs: {sum(ok for *_, ok in rows)}/{len(rows)} handled as designed")
        for col in ("input", "outcome", "ok"):
            table.add_column(col)
        for name, outcome, ok in rows:
            table.add_row(name, escape(outcome[:150]), "yes" if ok else "[red]NO[/]")
        console.print(table)
        figures["bad_inputs"] = rows
        good = good and all(ok for *_, ok in rows)

    if "kill" in sections:
        kr = kill_resume(work / "kill", plain, args.docs, args.batch_size, args.kills)
        console.print(
            f"kill/resume: {kr['kills']} SIGKILLs of `o1-retriever index` ({kr['docs']} docs, batches of {args.batch_size}; "
            f"stored at each kill {kr['stored_at_each_kill']}), final run exit {kr['final_exit']}: {kr['stored']} stored, "
            f"{kr['lost']} lost, {kr['duplicated']} duplicated, max |vector - uninterrupted| = {kr['max_abs_diff']:.2e}",
            markup=False,
        )
        figures["kill_resume"] = kr
        good = good and kr["lost"] == kr["duplicated"] == 0 and kr["max_abs_diff"] < 1e-5

    if "concurrency" in sections:
        cc = concurrency(work / "conc", thinker, encoder, args.threads, args.max_new_tokens, args.thoughts, args.queries)
        console.print(
            f"concurrency: {cc['thread_identical']}/{cc['thread_calls']} searches from {cc['threads']} threads and "
            f"{cc['task_identical']}/{cc['task_calls']} from {cc['task_calls']} asyncio tasks identical to sequential calls "
            f"(thoughts, ids, scores; {cc['thoughts']} thoughts of {cc['tokens']} tokens); cache rows {cc['cache_rows']} for {cc['distinct_queries']} queries; "
            f"wall: sequential {cc['sequential_s']:.1f}s, threads {cc['threads_s']:.1f}s, tasks {cc['tasks_s']:.1f}s",
            markup=False,
        )
        figures["concurrency"] = cc
        good = good and cc["thread_identical"] == cc["thread_calls"] and cc["task_identical"] == cc["task_calls"]

    if "restart" in sections:
        table = Table(title=f"Chroma server restarted while 4 clients search and `o1-retriever index` writes {args.restart_docs} docs")
        for col in ("restart", "client retries", "down s", "searches", "right", "ServerError", "wrong", "in flight across it (right)", "longest call s", "indexer exit", "rerun: stored / lost / duplicated"):
            table.add_column(col)
        figures["restart"] = []
        for run in args.restarts.split(","):
            mode, retries = run.split(":")
            r = server_restart(work / f"restart-{mode}-{retries}", plain, mode, args.restart_docs, int(retries))
            r["client_retries"] = int(retries)
            figures["restart"].append(r)
            table.add_row(
                {"term": "SIGTERM", "kill": "SIGKILL"}[mode], retries, f"{r['down_s']:.1f}", str(r["searches"]), str(r["right"]), str(r["server_errors"]),
                str(r["wrong"]), f"{r['across_restart']} ({r['across_right']})", f"{r['longest_call_s']:.1f}",
                str(r["indexer_exit"]) + (f": {r['indexer_error'][:60]}" if r["indexer_error"] else ""),
                f"{r['stored']} / {r['lost']} / {r['duplicated']} (exit {r['rerun_exit']})",
            )
            good = good and r["wrong"] == 0 and r["lost"] == r["duplicated"] == 0 and r["rerun_exit"] == 0
        console.print(table)

    if "soak" in sections:
        sk = soak(work / "soak", args.soak_repeated, args.soak_new)
        table = Table(title="soak: one process, default models (SmolLM2 thinker, MiniLM encoder, k=3, 64 tokens), sample corpus")
        for col in ("searches", "p50 ms", "p99 ms", "RSS after (MB)"):
            table.add_column(col)
        table.add_row("start (models loaded, 8 questions thought about)", "", "", f"{sk['rss_start_mb']:.0f}")
        table.add_row(f"{sk['repeated']:,} repeated, thoughts cached", f"{sk['cached_p50_ms']:.1f}", f"{sk['cached_p99_ms']:.1f}", f"{sk['rss_after_repeated_mb']:.0f}")
        table.add_row(f"{sk['new']:,} new questions, no thinking", f"{sk['new_p50_ms']:.1f}", f"{sk['new_p99_ms']:.1f}", f"{sk['rss_after_new_mb']:.0f}")
        console.print(table)
        console.print(f"soak: RSS growth {sk['growth_mb']:+.1f} MB over {sk['repeated'] + sk['new']:,} searches (target < 50 MB); cache rows {sk['cache_rows']}", markup=False)
        figures["soak"] = sk
        good = good and sk["growth_mb"] < 50

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
