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
from o1_retriever.index import ChromaIndex, read_source, source_id

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


def rewrite_corpus(path: Path, added: int = 300) -> None:
    """The next version of write_corpus's corpus, in place: every 5th document (from doc-1)
    deleted, every even one revised, the rest kept byte for byte, ``added`` new ones at the end."""
    rng = random.Random(1)
    old = path.read_text().splitlines()
    lines = []
    for i, line in enumerate(old):
        if i % 5 == 1:
            continue
        if i % 2 == 0:
            line = json.dumps({"_id": f"doc-{i}", "title": f"Revised note {i}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24)))})
        lines.append(line)
    for i in range(len(old), len(old) + added):
        lines.append(json.dumps({"_id": f"doc-{i}", "title": f"New note {i}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24)))}))
    path.write_text("\n".join(lines) + "\n")


def test_sigkill_mid_sync_keeps_every_chunk_old_or_new_and_a_rerun_converges(encoder, model_home, tmp_path):
    """Issue 13: syncing a changed corpus writes the new chunks first and removes stale ones
    last, so a SIGKILL at any moment loses no chunk that the source still holds."""
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus)
    old = {d.id: d.text for d in read_source(corpus)}
    db = tmp_path / "db"
    plain = ThinkingEmbedder(None, encoder)
    ChromaIndex("kill", plain, path=db).add(read_source(corpus), source=source_id(corpus), sync=True, batch_size=BATCH, show_progress=False)
    SharedSystemClient.clear_system_cache()  # another process writes there next

    rewrite_corpus(corpus)
    new = {d.id: d.text for d in read_source(corpus)}
    assert len(set(old) - set(new)) == 240 and len(set(new) - set(old)) == 300

    proc = start_index(corpus, db, model_home)  # `o1-retriever index` syncs by default
    kill_after_first_batches(proc)
    assert proc.returncode == -signal.SIGKILL
    got = ChromaIndex("kill", plain, path=db, create=False).collection.get(include=["documents"])
    SharedSystemClient.clear_system_cache()
    held = dict(zip(got["ids"], got["documents"]))
    missing = [i for i in set(old) & set(new) if i not in held]
    assert not missing, f"{len(missing)} chunks the source still holds went missing, e.g. {missing[:3]}"
    assert all(held[i] in (old.get(i), new.get(i)) for i in held), "a chunk holds neither its old nor its new text"
    assert set(held) <= set(old) | set(new)
    revised = [i for i in set(old) & set(new) if old[i] != new[i]]
    assert any(held[i] == new[i] for i in revised) and any(held[i] == old[i] for i in revised), "the kill must land mid-sync"

    env = {**os.environ, "O1_RETRIEVER_HOME": str(model_home)}
    rerun = subprocess.run(
        [sys.executable, "-m", "o1_retriever.cli", "index", str(corpus), "--collection", "kill", "--db", str(db),
         "--encoder", "minilm", "--thinker", "none", "--batch-size", str(BATCH)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    not_yet = sum(held.get(i) != t for i, t in new.items())
    assert f"{not_yet} written, {len(new) - not_yet} unchanged, 240 removed" in " ".join(rerun.stderr.split())

    synced = ChromaIndex("kill", plain, path=db, create=False).collection.get(include=["documents", "embeddings"])
    assert len(synced["ids"]) == len(set(synced["ids"])) == len(new)
    assert dict(zip(synced["ids"], synced["documents"])) == new
    clean = ChromaIndex("kill", plain, path=tmp_path / "uninterrupted")
    clean.add(read_source(corpus), batch_size=BATCH, show_progress=False)
    want = clean.collection.get(ids=synced["ids"], include=["embeddings"])
    assert np.allclose(np.asarray(synced["embeddings"]), np.asarray(want["embeddings"]), atol=1e-5)
