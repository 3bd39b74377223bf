"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions format, for the
thinker-failure tests: it can fail the first N requests (HTTP 503), fail all of them, or hang
past the client's timeout. It is plumbing for the retry/fallback paths, so its answers are
canned text (``"thought <n>"``), and it records every request it receives.

It can also answer like a reasoning model (DeepSeek-R1 distills, Qwen3 in thinking mode) served
by vLLM, llama.cpp or Ollama (``reasoning=True``): each choice is generated as
``<think>REASONING</think>\n\nANSWER`` and cut at ``max_tokens`` (one word = one token), so a
small budget really leaves the closing tag out. ``template_opens_think`` leaves the opening tag
out of the output (the chat template put it in the prompt, as DeepSeek-R1's does);
``reasoning_field`` names the field a server-side reasoning parser moves the reasoning into
(``"reasoning_content"``: vLLM before 0.11 and llama.cpp; ``"reasoning"``: vLLM 0.11+ and
Ollama), leaving ``content`` the answer, or null when the budget ran out inside the reasoning.
``blank`` answers the first ``blank`` choices (over all requests; ``-1``: all of them) with
nothing usable: an empty string, whitespace, or an empty think block, in turn.

``/completions`` (a completion prompt, for base models) answers each choice with the text
``" thought <i> about <prompt end>"`` followed by a blank line and a next query, which the
thinker must cut away. ``models`` names the only models served (another name gets HTTP 404, as
vLLM and Ollama answer); ``chat_template=False`` serves a base model: chat completions get HTTP
400 (no chat template), as vLLM answers."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OpenAIStub:
    def __init__(
        self,
        *,
        fail_first: int = 0,
        fail_always: bool = False,
        fail_status: int = 503,
        hang: float = 0.0,
        numbered: bool = False,
        reasoning: bool = False,
        template_opens_think: bool = False,
        reasoning_field: str | None = None,
        blank: int = 0,
        models: tuple[str, ...] | None = None,
        chat_template: bool = True,
    ) -> None:
        self.numbered = numbered  # answers name the request number, so every request answers differently
        self.reasoning = reasoning
        self.template_opens_think = template_opens_think
        self.reasoning_field = reasoning_field
        self.blank = blank
        self.models = models
        self.chat_template = chat_template
        self.paths: list[str] = []  # the path of every request, in order
        self.choices_sent = 0
        self._count_lock = threading.Lock()
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.fail_status = fail_status  # 503: overloaded (may heal); 401: refused credentials (never heals)
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
                stub.paths.append(self.path)
                n = len(stub.requests)
                if stub.hang:
                    stub._release.wait(stub.hang)
                if stub.fail_always or n <= stub.fail_first:
                    self._send(stub.fail_status, {"error": {"message": "overloaded" if stub.fail_status >= 500 else f"HTTP {stub.fail_status}"}})
                    return
                if stub.models is not None and body.get("model") not in stub.models:
                    self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                    return
                if self.path.endswith("/completions") and not self.path.endswith("/chat/completions"):
                    about = body["prompt"][-20:]
                    texts = [f" thought {i} about {about}\n\nQuery: another question" for i in range(int(body.get("n", 1)))]
                    choices = [{"index": i, "text": t, "finish_reason": "length"} for i, t in enumerate(texts)]
                    self._send(200, {"id": "x", "object": "text_completion", "model": body.get("model"), "choices": choices})
                    return
                if not stub.chat_template:
                    self._send(400, {"error": {"message": "this model has no chat template"}})
                    return
                about = f"request {n}" if stub.numbered else body["messages"][0]["content"][-20:]
                choices = []
                for i in range(int(body.get("n", 1))):
                    with stub._count_lock:
                        stub.choices_sent += 1
                        sent = stub.choices_sent
                    finish = "stop"
                    if stub.blank < 0 or sent <= stub.blank:
                        message = {"role": "assistant", "content": _BLANKS[sent % len(_BLANKS)]}
                    elif stub.reasoning:
                        message, finish = stub._reasoning_message(i, about, int(body.get("max_tokens") or body.get("max_completion_tokens") or 16))
                    else:
                        message = {"role": "assistant", "content": f"thought {i} about {about}"}
                    choices.append({"index": i, "message": message, "finish_reason": finish})
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

    def _reasoning_message(self, i: int, about: str, max_tokens: int) -> tuple[dict, str]:
        """A reasoning model's choice ``i`` after ``max_tokens`` words, and its finish reason."""
        words = ([] if self.template_opens_think else ["<think>"]) + reasoning_words(i, about) + ["</think>"] + answer_words(i, about)
        finish = "length" if max_tokens < len(words) else "stop"
        text = " ".join(words[:max_tokens]).replace("<think> ", "<think>\n").replace(" </think>", "\n</think>\n\n")
        if self.reasoning_field is None:
            return {"role": "assistant", "content": text}, finish
        thinking, closed, answer = text.replace("<think>", "").partition("</think>")
        if not closed:  # no end of reasoning yet: a parser returns it all as reasoning
            return {"role": "assistant", "content": None, self.reasoning_field: thinking.strip()}, finish
        return {"role": "assistant", "content": answer.strip(), self.reasoning_field: thinking.strip()}, finish

    def __enter__(self) -> "OpenAIStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


_BLANKS = ["", "  \n\t ", "<think>\n\n</think>\n\n"]


def reasoning_words(i: int, about: str) -> list[str]:
    """The reasoning of choice ``i``, as tokens (14; ``about`` is one)."""
    return ["okay", "the", "user", "asks", "about", about, "so", "let", "me", "recall", "facts,", "variant", str(i), "and"]


def answer_words(i: int, about: str) -> list[str]:
    """The answer of choice ``i``, as tokens (6; ``about`` is one)."""
    return ["answer", f"{i}:", "a", "passage", "on", about]
