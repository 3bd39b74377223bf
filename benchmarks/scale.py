"""Benchmark 5 - scale: insert time, top-10 search latency and index size on disk at several
collection sizes, embedded Chroma vs a ``chroma run`` server on loopback, side by side.

Chunks are synthetic but realistic: SciFact abstracts (cycled, with their own ids) as texts, and
random unit vectors of MiniLM's 384 dimensions (embedding 500k chunks on 2 cores would take
hours; vectors do not change Chroma's cost). Queries are random unit vectors too, so the latency
is Chroma's (add ~10-30 ms of query encoding, see query_latency.py).

    python benchmarks/scale.py                          # 5k and 50k chunks
    python benchmarks/scale.py --sizes 5000,50000,500000 --json out.json
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import corpus, machine, median, save, table, timed

DIM = 384


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def disk_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


class Server:
    """A real ``chroma run`` on 127.0.0.1, stopped on exit."""

    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        exe = shutil.which("chroma") or str(Path(__import__("sys").executable).parent / "chroma")
        self.proc = subprocess.Popen([exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        import chromadb
        from chromadb.config import Settings

        deadline = time.time() + 60
        while True:
            try:
                client = chromadb.HttpClient(host="127.0.0.1", port=self.port, settings=Settings(anonymized_telemetry=False))
                client.heartbeat()
                return client
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.__exit__()
                    raise SystemExit("chroma run did not start")
                time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill_and_query(client, size: int, texts: list[str], n_queries: int, seed: int) -> dict:
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    col = client.get_or_create_collection(f"scale-{size}", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    batch = min(5000, client.get_max_batch_size())
    start = time.perf_counter()
    for lo in tqdm(range(0, size, batch), desc=f"insert {size}", unit="batch", leave=False):
        hi = min(size, lo + batch)
        col.upsert(
            ids=[f"c{i}" for i in range(lo, hi)],
            embeddings=unit(rng, hi - lo),
            documents=[texts[i % len(texts)] for i in range(lo, hi)],
            metadatas=[{"source": "scifact", "chunk": i} for i in range(lo, hi)],
        )
    insert = time.perf_counter() - start
    queries = unit(rng, n_queries + 2)
    for q in queries[:2]:  # warm-up (index load)
        col.query(query_embeddings=[q], n_results=10)
    latencies = [timed(col.query, query_embeddings=[q], n_results=10, include=["documents", "metadatas", "distances"])[0] for q in queries[2:]]
    assert col.count() == size
    return {"insert_s": insert, "search_ms": median(latencies) * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,50000", help="comma-separated collection sizes")
    ap.add_argument("--queries", type=int, default=50, help="queries timed per size and mode")
    ap.add_argument("--modes", default="embedded,server")
    ap.add_argument("--json")
    args = ap.parse_args()

    import chromadb
    from chromadb.config import Settings

    print(f"machine: {machine()}")
    texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus("scifact")]
    tmp = Path(tempfile.mkdtemp(prefix="o1-bench-scale-"))
    rows, payload = [], {"machine": machine(), "runs": []}
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            for mode in args.modes.split(","):
                path = tmp / f"{mode}-{size}"
                if mode == "embedded":
                    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
                    result = fill_and_query(client, size, texts, args.queries, seed=size)
                    del client
                else:
                    with Server(path) as client:
                        result = fill_and_query(client, size, texts, args.queries, seed=size)
                result.update(size=size, mode=mode, disk_mib=disk_mib(path))
                payload["runs"].append(result)
                print(f"  {mode} {size}: insert {result['insert_s']:.1f}s, search {result['search_ms']:.1f} ms, {result['disk_mib']:.0f} MiB", flush=True)
                rows.append([f"{size:,}", mode, f"{size / result['insert_s']:.0f}", f"{result['search_ms']:.1f}", f"{result['disk_mib']:.0f}"])
                shutil.rmtree(path, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"384-d unit vectors with SciFact texts, top-10 cosine, median of {args.queries} queries")
    print(table(["chunks", "Chroma", "insert chunks/s", "search ms (median)", "size on disk MiB"], rows))
    save(args.json, payload)


if __name__ == "__main__":
    main()
