"""Chroma in client-server mode (issue 6): a real Python Chroma server with token
authentication, and the Rust `chroma run` server. Both listen on a free loopback port and are
stopped in fixture teardown."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from o1_retriever import CollectionError, ServerError, ThinkingEmbedder
from o1_retriever.index import ChromaIndex, read_source

pytestmark = pytest.mark.slow

QUESTION = "Which metal is liquid at room temperature?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(cmd: list[str], env: dict, port: int, log: Path):
    """Start a server process and wait until it answers HTTP on ``port``."""
    fh = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return proc, fh
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"server did not start: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen, fh) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(15)
    fh.close()


@pytest.fixture()
def auth_server(tmp_path):
    """The Python Chroma server shipped in the chromadb package, with token authentication."""
    port, token = free_port(), f"s3cret-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "IS_PERSISTENT": "1",
        "PERSIST_DIRECTORY": str(tmp_path / "server-db"),
        "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
        "CHROMA_SERVER_AUTHN_CREDENTIALS": token,
        "ANONYMIZED_TELEMETRY": "False",
    }
    cmd = [sys.executable, "-m", "uvicorn", "chromadb.app:app", "--host", "127.0.0.1", "--port", str(port)]
    proc, fh = serve(cmd, env, port, tmp_path / "server.log")
    yield port, token
    stop(proc, fh)


@pytest.fixture()
def rust_server(tmp_path):
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    cmd = [chroma, "run", "--path", str(tmp_path / "rust-db"), "--host", "127.0.0.1", "--port", str(port)]
    proc, fh = serve(cmd, {**os.environ, "ANONYMIZED_TELEMETRY": "False"}, port, tmp_path / "rust.log")
    yield port
    stop(proc, fh)


@pytest.fixture()
def plain(encoder):
    return ThinkingEmbedder(None, encoder)


def test_client_without_or_with_a_wrong_token_is_refused_clearly(auth_server, plain, monkeypatch):
    port, token = auth_server
    monkeypatch.delenv("CHROMA_AUTH_TOKEN", raising=False)
    with pytest.raises(ServerError, match="refused the request.*no token was given"):
        ChromaIndex("docs", plain, host="127.0.0.1", port=port)
    with pytest.raises(ServerError, match="the token was refused") as info:
        ChromaIndex("docs", plain, host="127.0.0.1", port=port, auth_token="not-the-token")
    assert "not-the-token" not in str(info.value)


def test_token_from_argument_or_environment_works(auth_server, plain, monkeypatch, sample_corpus):
    port, token = auth_server
    monkeypatch.delenv("CHROMA_AUTH_TOKEN", raising=False)
    index = ChromaIndex("docs", plain, host="127.0.0.1", port=port, auth_token=token)
    stats = index.add(read_source(sample_corpus), show_progress=False)
    assert index.search(QUESTION, k=2).hits[0].id == "mercury.md#0"
    monkeypatch.setenv("CHROMA_AUTH_TOKEN", token)
    assert ChromaIndex("docs", plain, host="127.0.0.1", port=port).count() == stats.written > 10


def test_cli_refuses_without_token_and_never_prints_it(auth_server, model_home, sample_corpus):
    port, token = auth_server
    env = {k: v for k, v in os.environ.items() if k != "CHROMA_AUTH_TOKEN"} | {"O1_RETRIEVER_HOME": str(model_home)}
    args = [sys.executable, "-m", "o1_retriever.cli", "index", str(sample_corpus), "--host", "127.0.0.1", "--port", str(port), "--thinker", "none", "--verbose"]
    refused = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 2, refused.stderr
    assert "refused the request" in refused.stderr and "Traceback" not in refused.stderr
    ok = subprocess.run(args, capture_output=True, text=True, env={**env, "CHROMA_AUTH_TOKEN": token}, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert "indexed" in ok.stderr and "HTTP Request" in ok.stderr  # verbose logging was on
    assert token not in ok.stdout + ok.stderr + refused.stdout + refused.stderr


def test_unreachable_server_is_a_clear_error(plain):
    port = free_port()  # nothing listens there
    with pytest.raises(ServerError, match=f"cannot reach a Chroma server at 127.0.0.1:{port}"):
        ChromaIndex("docs", plain, host="127.0.0.1", port=port)


def test_another_service_on_the_port_is_a_one_line_server_error(tmp_path):
    """A plain web server (not Chroma) answers on the port: a one-line ServerError, no HTML page."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from o1_retriever.index import make_client

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(ServerError, match="did not answer as a Chroma server") as info:
            make_client(host="127.0.0.1", port=server.server_address[1], retries=0)
    finally:
        server.shutdown()
        server.server_close()
    assert "\n" not in str(info.value) and "<html" not in str(info.value).lower()


def test_rust_chroma_server_indexes_and_searches(rust_server, plain, sample_corpus):
    index = ChromaIndex("docs", plain, host="127.0.0.1", port=rust_server)
    stats = index.add(read_source(sample_corpus), show_progress=False)
    assert index.space == "cosine"
    result = index.search(QUESTION, k=3)
    assert result.hits[0].id == "mercury.md#0" and result.hits[0].score > result.hits[2].score
    again = ChromaIndex("docs", plain, host="127.0.0.1", port=rust_server).add(read_source(sample_corpus), show_progress=False)
    assert again.written == 0 and again.unchanged == stats.seen
    assert index.count() == stats.seen


# -- issue 13: server faults, read-only opens, `collections` against a server ---------------------
class RestartableServer:
    """Chroma's Python server on a fixed loopback port and data folder, stopped and started
    again on demand (the data survives: IS_PERSISTENT)."""

    def __init__(self, tmp_path: Path, token: str | None = None) -> None:
        self.port, self.tmp, self.token = free_port(), tmp_path, token
        self.env = {**os.environ, "IS_PERSISTENT": "1", "PERSIST_DIRECTORY": str(tmp_path / "restart-db"), "ANONYMIZED_TELEMETRY": "False"}
        if token:
            self.env |= {
                "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
                "CHROMA_SERVER_AUTHN_CREDENTIALS": token,
            }
        self.proc = self.fh = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "uvicorn", "chromadb.app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc, self.fh = serve(cmd, self.env, self.port, self.tmp / "restart.log")

    def stop(self, crash: bool = False) -> None:
        if crash:
            self.proc.kill()
            self.proc.wait(15)
            self.fh.close()
        else:
            stop(self.proc, self.fh)
        self.proc = None


@pytest.fixture()
def restartable(tmp_path):
    server = RestartableServer(tmp_path)
    server.start()
    yield server
    if server.proc is not None:
        server.stop()


def test_a_server_that_stays_down_is_a_clear_server_error_after_bounded_retries(tmp_path, plain, sample_corpus, caplog, monkeypatch):
    monkeypatch.delenv("CHROMA_AUTH_TOKEN", raising=False)
    server = RestartableServer(tmp_path, token=f"s3cret-{uuid.uuid4().hex}")
    server.start()
    try:
        index = ChromaIndex("docs", plain, host="127.0.0.1", port=server.port, auth_token=server.token, retries=2)
        index.add(read_source(sample_corpus), show_progress=False)
    finally:
        server.stop()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(ServerError, match=rf"cannot reach a Chroma server at 127\.0\.0\.1:{server.port} \(3 attempts\)") as info:
        index.search(QUESTION, k=2, thinking=False)
    # bounded: waits of 0.25 and 0.5 s between the 3 attempts (counted below), no client-side hang;
    # the bound is loose because embedding the query on a loaded 2-core machine alone took ~7 s
    assert time.monotonic() - started < 30
    assert caplog.text.count("retrying in") == 2
    assert server.token not in str(info.value) + caplog.text and "\n" not in str(info.value)


def test_server_restart_while_four_clients_search_and_one_indexes(restartable, plain, sample_corpus, model_home, tmp_path, caplog):
    """Every search returns the right answer (after retrying over the restart) or a clear
    ServerError, never a wrong or partial one; the interrupted `index` either rode over the
    restart or failed clearly, and rerunning it converges with nothing lost or duplicated."""
    from test_interrupt import write_corpus

    port = restartable.port
    ChromaIndex("docs", plain, host="127.0.0.1", port=port).add(read_source(sample_corpus), show_progress=False)
    queries = [QUESTION, "Why is the sky blue?", "How do bees tell each other where flowers are?", "What causes ocean tides?"]
    reader = ChromaIndex("docs", plain, host="127.0.0.1", port=port, create=False, retries=8)  # up to ~20 s of retrying
    expected = {q: reader.search(q, k=5, thinking=False) for q in queries}

    corpus = tmp_path / "corpus.jsonl"
    ids = write_corpus(corpus, 1500)
    cmd = [sys.executable, "-m", "o1_retriever.cli", "index", str(corpus), "--collection", "growing", "--host", "127.0.0.1",
           "--port", str(port), "--thinker", "none", "--batch-size", "100"]
    env = {**os.environ, "O1_RETRIEVER_HOME": str(model_home)}
    indexer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    log = bytearray()
    threading.Thread(target=lambda: [log.extend(c) for c in iter(lambda: indexer.stderr.read1(256), b"")], daemon=True).start()

    calls: list[tuple[int, float, float, object]] = []  # (client, start, end, result or exception)
    done = threading.Event()

    def client(n: int) -> None:
        index = ChromaIndex("docs", plain, host="127.0.0.1", port=port, create=False, retries=8)
        while not done.is_set():
            started = time.monotonic()
            try:
                outcome: object = index.search(queries[n], k=5, thinking=False)
            except Exception as exc:  # noqa: BLE001 - recorded and judged below
                outcome = exc
            calls.append((n, started, time.monotonic(), outcome))
            time.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="o1_retriever"):
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 300
        while not re.findall(rb"(\d{3,})doc", bytes(log)) and indexer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # at least one batch of 100 committed
        assert indexer.poll() is None, f"the indexer ended before the restart: {bytes(log)[-1000:]!r}"
        down = time.monotonic()
        restartable.stop(crash=True)
        time.sleep(1.0)
        restartable.start()
        up = time.monotonic()
        while time.monotonic() < up + 5 or not all(any(c[0] == n and c[1] > up for c in calls) for n in range(4)):
            time.sleep(0.2)
        done.set()
        for t in threads:
            t.join(60)
    indexer.wait(600)

    def right(n: int, got: object) -> bool:
        want = expected[queries[n]]
        return [h.id for h in got.hits] == [h.id for h in want.hits] and np.allclose([h.score for h in got.hits], [h.score for h in want.hits], atol=1e-5)

    wrong = [(n, c) for n, _, _, c in calls if not isinstance(c, ServerError) and not (hasattr(c, "hits") and right(n, c))]
    assert not wrong, f"wrong, partial or unexpected results: {wrong[:3]}"
    rode_over = [c for c in calls if c[1] < up and c[2] > down and hasattr(c[3], "hits")]
    assert rode_over, "no search was in flight across the restart"
    assert "retrying in" in caplog.text
    assert all(hasattr(c[3], "hits") for c in calls if c[1] > up)  # after the restart: all answered

    stderr = bytes(log).decode(errors="replace")
    assert indexer.returncode in (0, 2) and "Traceback" not in stderr, stderr[-2000:]
    if indexer.returncode == 2:
        assert "cannot reach a Chroma server" in " ".join(stderr.split())
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "0 removed" in " ".join(rerun.stderr.split())
    got = ChromaIndex("growing", plain, host="127.0.0.1", port=port, create=False).collection.get(include=["documents"])
    assert len(got["ids"]) == len(set(got["ids"])) == 1500 and set(got["ids"]) == set(ids)
    texts = {json.loads(line)["_id"]: f"Note {json.loads(line)['_id'].split('-')[1]} {json.loads(line)['text']}" for line in corpus.read_text().splitlines()}
    assert dict(zip(got["ids"], got["documents"])) == texts


def test_reading_on_a_server_creates_nothing_and_collections_works_there(rust_server, plain, sample_corpus, model_home):
    ChromaIndex("docs", plain, host="127.0.0.1", port=rust_server).add(read_source(sample_corpus), source="sample", show_progress=False)
    with pytest.raises(CollectionError, match=r"no collection 'doc' in the Chroma server at 127\.0\.0\.1:\d+ \(it holds: docs\); did you mean 'docs'\?"):
        ChromaIndex("doc", plain, host="127.0.0.1", port=rust_server, create=False)
    env = {**os.environ, "O1_RETRIEVER_HOME": str(model_home)}
    server = ["--host", "127.0.0.1", "--port", str(rust_server)]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "o1_retriever.cli", *args], capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)

    typo = cli("search", "glaciers", "--collection", "nosuchcoll", *server, "--no-think")
    assert typo.returncode == 2 and "no collection 'nosuchcoll'" in " ".join(typo.stderr.split())
    listed = cli("collections", *server, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["sources"]) for r in rows] == [("docs", 1)] and rows[0]["count"] > 10
    info = cli("collections", "info", "docs", *server, "--json")
    assert json.loads(info.stdout)["sources"] == {"sample": rows[0]["count"]}
    deleted = cli("collections", "delete", "docs", *server, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(cli("collections", *server, "--json").stdout) == []
