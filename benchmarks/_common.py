"""Helpers shared by the benchmarks (timing, data, tables). Not part of the package."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("O1_SHARED_DATA", ROOT.parent / "shared" / "data"))


def dataset(name: str = "scifact") -> Path:
    path = SHARED_DATA / name
    if not (path / "corpus.jsonl").exists():
        raise SystemExit(f"benchmark data not found: {path} (set O1_SHARED_DATA to a folder of BEIR sets)")
    return path


def queries(name: str = "scifact", n: int = 8) -> list[str]:
    """The first ``n`` query texts of a BEIR set (read by the package's one BEIR reader)."""
    from o1_retriever.evaluation.beir import read_queries

    return list(read_queries(dataset(name) / "queries.jsonl")[0].values())[:n]


def corpus(name: str = "scifact", n: int | None = None) -> list[dict]:
    out = []
    with open(dataset(name) / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
                if n is not None and len(out) >= n:
                    break
    return out


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load average {load:.1f} at start"


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table (pasteable into the README)."""
    cells = [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def save(path: str | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")
        print(f"wrote {path}")


#: wall time and peak RSS of every stage run so far (see :func:`stage`)
STAGES: list[dict] = []


@contextmanager
def stage(name: str):
    """Wall time and peak RSS (sampled every 0.1 s with psutil) of one stage: this process's
    and, for the ``o1-retriever eval`` stages, the subprocess's own."""
    import psutil

    proc = psutil.Process()
    peak = [proc.memory_info().rss, 0]  # [this process, largest child]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            peak[0] = max(peak[0], proc.memory_info().rss)
            for child in proc.children(recursive=True):
                try:
                    peak[1] = max(peak[1], child.memory_info().rss)
                except psutil.Error:
                    pass

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    start = time.perf_counter()
    print(f"== {name}", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        stop.set()
        t.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        record = {"stage": name, "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak[0] / 2**20)}
        if peak[1]:
            record["subprocess_peak_rss_mb"] = round(peak[1] / 2**20)
        STAGES.append(record)
        print(f"   {STAGES[-1]}", file=sys.stderr, flush=True)


def run_eval(dataset: str, label: str, folder: Path, options: list[str], work: Path) -> dict:
    """One ``o1-retriever eval`` run (reused when its results.json exists)."""
    out = work / "eval" / f"{dataset}-{label}".replace(" ", "_").replace("/", "_")
    result = out / "results.json"
    if not result.exists():
        cmd = [sys.executable, "-m", "o1_retriever", "eval", str(folder), "--out", str(out), *options]
        with stage(f"o1-retriever eval {dataset}: {label}"):
            print("   $ " + " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True)
    return json.loads(result.read_text())
