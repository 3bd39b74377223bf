"""A real llama.cpp OpenAI-compatible server on 127.0.0.1 serving the offline SmolLM2 GGUF, for the
bring-your-own-model tests and benchmarks/async_thinking.py.

Two servers speak the same API: llama-cpp-python's ``python -m llama_cpp.server`` (one model
behind a lock: it answers one request at a time), and llama.cpp's own ``llama-server`` binary
(``binary=PATH``), whose ``--parallel N`` slots decode N requests together (continuous batching).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MODEL_NAME = "smollm2"  # the name both servers answer to


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``with LlamaServer() as server: server.url`` - started, ready, and stopped afterwards.

    Args:
        threads: CPU threads of the server.
        binary: path of llama.cpp's ``llama-server``; default: llama-cpp-python's server.
        parallel: slots of ``llama-server`` (requests decoded together); llama-cpp-python has one.
        ctx: context tokens per slot.
    """

    def __init__(self, *, threads: int = 1, binary: str | None = None, parallel: int = 1, ctx: int = 1024, gguf: str | None = None) -> None:
        from o1_retriever.models import smollm2_gguf_path

        self.gguf = gguf or str(smollm2_gguf_path())
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        host = ["--host", "127.0.0.1", "--port", str(self.port)]
        if binary:
            self.command = [binary, "-m", self.gguf, *host, "-t", str(threads), "-c", str(ctx * parallel), "-np", str(parallel),
                            "--alias", MODEL_NAME, "--no-webui", "--log-disable"]
        else:
            if parallel != 1:
                raise ValueError("llama-cpp-python's server has no parallel slots (one model behind a lock)")
            self.command = [sys.executable, "-m", "llama_cpp.server", "--model", self.gguf, *host, "--n_threads", str(threads),
                            "--n_ctx", str(ctx), "--model_alias", MODEL_NAME, "--verbose", "False"]
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "LlamaServer":
        self._process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited ({self._process.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"the llama.cpp server did not answer within 120 s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return Path(self._log.name).read_text(errors="replace")[-chars:]

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
