"""Chroma in client-server mode (issue 6): a real Python Chroma server with token
authentication, and the Rust `chroma run` server. Both listen on a free loopback port and are
stopped in fixture teardown."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from o1_retriever import ServerError, ThinkingEmbedder
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


def test_rust_chroma_server_indexes_and_searches(rust_server, plain, sample_corpus):
    index = ChromaIndex("docs", plain, host="127.0.0.1", port=rust_server)
    stats = index.add(read_source(sample_corpus), show_progress=False)
    assert index.space == "cosine"
    result = index.search(QUESTION, k=3)
    assert result.hits[0].id == "mercury.md#0" and result.hits[0].score > result.hits[2].score
    again = ChromaIndex("docs", plain, host="127.0.0.1", port=rust_server).add(read_source(sample_corpus), show_progress=False)
    assert again.written == 0 and again.unchanged == stats.seen
    assert index.count() == stats.seen
