"""Interruption (issue 6): `o1-retriever index` killed with SIGKILL mid-run, then rerun, leaves
every document exactly once with the vectors of an uninterrupted run. Real subprocess, real
MiniLM, real embedded Chroma."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from chromadb.api.client import SharedSystemClient

from o1_retriever import ThinkingEmbedder
from o1_retriever.index import ChromaIndex, read_source

pytestmark = pytest.mark.slow

N_DOCS = 1200
BATCH = 150
WORDS = "tide moon ocean gravity metal liquid mercury bee dance flower sky blue light scatter volcano lava coffee bean chess opening".split()


def write_corpus(path: Path, n: int = N_DOCS) -> list[str]:
    rng = random.Random(0)
    ids = []
    with path.open("w") as fh:
        for i in range(n):
            ids.append(f"doc-{i}")
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24)))
            fh.write(json.dumps({"_id": f"doc-{i}", "title": f"Note {i}", "text": text}) + "\n")
    return ids


def start_index(corpus: Path, db: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "O1_RETRIEVER_HOME": str(home)}
    args = ["index", str(corpus), "--collection", "kill", "--db", str(db), "--encoder", "minilm", "--thinker", "none", "--batch-size", str(BATCH)]
    return subprocess.Popen([sys.executable, "-m", "o1_retriever.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def kill_after_first_batches(proc: subprocess.Popen, batches: int = 1, timeout: float = 300) -> int:
    """Wait until the progress bar shows ``batches`` committed batches, then SIGKILL.
    Returns the number of documents the bar had shown."""
    seen = bytearray()
    reader = threading.Thread(target=lambda: [seen.extend(chunk) for chunk in iter(lambda: proc.stderr.read1(256), b"")], daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        shown = [int(n) for n in re.findall(rb"(\d+)doc", bytes(seen))]
        if shown and max(shown) >= batches * BATCH:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return max(shown)
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"index did not reach {batches} batches (exit {proc.poll()}): {bytes(seen)[-2000:]!r}")


def test_sigkill_mid_index_then_rerun_loses_nothing_and_duplicates_nothing(encoder, model_home, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    ids = write_corpus(corpus)
    db = tmp_path / "interrupted"

    proc = start_index(corpus, db, model_home)
    shown = kill_after_first_batches(proc)
    assert proc.returncode == -signal.SIGKILL

    plain = ThinkingEmbedder(None, encoder)
    partial = ChromaIndex("kill", plain, path=db).count()
    # Embedded Chroma caches a folder's state per process: drop it before another process
    # writes there, or this process would later read its stale vector index.
    SharedSystemClient.clear_system_cache()
    assert shown <= partial < N_DOCS, "the kill must land mid-run, after at least one committed batch"

    env = {**os.environ, "O1_RETRIEVER_HOME": str(model_home)}
    rerun = subprocess.run(
        [sys.executable, "-m", "o1_retriever.cli", "index", str(corpus), "--collection", "kill", "--db", str(db),
         "--encoder", "minilm", "--thinker", "none", "--batch-size", str(BATCH)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = " ".join(rerun.stderr.split())
    assert f"{N_DOCS - partial} written, {partial} unchanged" in summary  # only the missing ones were embedded

    resumed = ChromaIndex("kill", plain, path=db)
    got = resumed.collection.get(include=["embeddings"])
    assert resumed.count() == N_DOCS
    assert len(got["ids"]) == len(set(got["ids"])) == N_DOCS and set(got["ids"]) == set(ids)

    clean = ChromaIndex("kill", plain, path=tmp_path / "uninterrupted")
    clean.add(read_source(corpus), batch_size=BATCH, show_progress=False)
    want = clean.collection.get(ids=got["ids"], include=["embeddings"])
    assert want["ids"] == got["ids"]
    assert np.allclose(np.asarray(got["embeddings"]), np.asarray(want["embeddings"]), atol=1e-5)
