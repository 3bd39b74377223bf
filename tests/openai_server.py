"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions format, for the
thinker-failure tests: it can fail the first N requests (HTTP 503), fail all of them, or hang
past the client's timeout. It is plumbing for the retry/fallback paths, so its answers are
canned text (``"thought <n>"``), and it records every request it receives."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OpenAIStub:
    def __init__(self, *, fail_first: int = 0, fail_always: bool = False, hang: float = 0.0, numbered: bool = False) -> None:
        self.numbered = numbered  # answers name the request number, so every request answers differently
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.hang = hang
        self.requests: list[tuple[float, dict, dict]] = []  # (time, headers, body)
        self._release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.requests.append((time.monotonic(), dict(self.headers), body))
                n = len(stub.requests)
                if stub.hang:
                    stub._release.wait(stub.hang)
                if stub.fail_always or n <= stub.fail_first:
                    self._send(503, {"error": {"message": "overloaded"}})
                    return
                about = f"request {n}" if stub.numbered else body["messages"][0]["content"][-20:]
                choices = [
                    {"index": i, "message": {"role": "assistant", "content": f"thought {i} about {about}"}, "finish_reason": "stop"}
                    for i in range(int(body.get("n", 1)))
                ]
                self._send(200, {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": choices})

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "OpenAIStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
