"""An OpenAI-compatible chat-completions endpoint as thinker (vLLM, llama.cpp server, Ollama,
or a hosted API), so a GPU server can do the thinking for a CPU retriever."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from o1_retriever.errors import ThinkerError
from o1_retriever.prompts import PASSAGE_PROMPT, ThoughtPrompt
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought

log = logging.getLogger(__name__)


class OpenAIThinker(Thinker):
    """Thoughts from ``POST {base_url}/chat/completions``.

    One request per query asks for ``n=k`` samples (servers that share the prompt's prefill
    across samples, like vLLM, pay for it once); requests for different queries run
    concurrently. A server that returns fewer than ``k`` choices (some ignore ``n``) is asked
    again for the rest. Failures are retried with exponential backoff, then raised as
    :class:`ThinkerError`.

    The API key is read from the environment variable ``api_key_env`` (never passed on the
    command line, never logged).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        prompt: ThoughtPrompt = PASSAGE_PROMPT,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        concurrency: int = 8,
    ) -> None:
        import httpx

        if not prompt.chat:
            raise ValueError("the OpenAI-compatible thinker needs a chat prompt")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.prompt = prompt
        self.retries = retries
        self.backoff = backoff
        self.concurrency = concurrency
        headers = {}
        key = os.environ.get(api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @property
    def identity(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def think(self, queries: list[str], k: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(queries))) as pool:
            return list(pool.map(lambda q: self._think_one(q, k, sampling), queries))

    def _think_one(self, query: str, k: int, sampling: SamplingConfig) -> list[str]:
        thoughts: list[str] = []
        while len(thoughts) < k:
            body = {
                "model": self.model,
                "messages": [{"role": "user", "content": self.prompt.render(query)}],
                "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "n": k - len(thoughts),
            }
            if sampling.seed is not None:
                body["seed"] = sampling.seed + len(thoughts)
            choices = self._post(body)["choices"]
            if not choices:
                raise ThinkerError(f"{self.identity} returned no choices")
            thoughts.extend(clean_thought(c["message"]["content"] or "") for c in choices)
        return thoughts[:k]

    def _post(self, body: dict) -> dict:
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post("/chat/completions", json=body)
                if response.status_code >= 500 or response.status_code == 429:
                    raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
                if response.status_code >= 400:  # a client error will not heal by retrying
                    raise ThinkerError(f"{self.identity} refused the request: HTTP {response.status_code} {response.text[:200]}")
                return response.json()
            except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
                last = exc
                if attempt < self.retries:
                    delay = self.backoff * 2**attempt
                    log.warning("thinker %s failed (%s); retrying in %.1fs", self.identity, exc, delay)
                    time.sleep(delay)
        raise ThinkerError(f"{self.identity} failed after {self.retries + 1} attempts: {last}")

    def close(self) -> None:
        self._client.close()
