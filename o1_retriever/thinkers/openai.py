"""An OpenAI-compatible endpoint as thinker (vLLM, llama.cpp server, Ollama, or a hosted API),
so a GPU server can do the thinking for a CPU retriever: chat completions for a chat prompt,
completions (``/v1/completions``) for a completion prompt such as ``passage-raw`` (base models)."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from o1_retriever.errors import ThinkerError, ThinkerUnavailableError
from o1_retriever.prompts import PASSAGE_PROMPT, PASSAGE_RAW_PROMPT, ThoughtPrompt
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought, cut_at_stop

log = logging.getLogger(__name__)

#: answers that hold for every request: credentials refused, model (or endpoint) unknown
_REFUSALS = (401, 403, 404)


class OpenAIThinker(Thinker):
    """Thoughts from ``POST {base_url}/chat/completions`` (a chat prompt, the default) or
    ``POST {base_url}/completions`` (a completion prompt, ``chat=False``: its thoughts are cut
    at the prompt's stop strings here, as the local backends cut them).

    One request per query asks for ``n=k`` samples (servers that share the prompt's prefill
    across samples, like vLLM, pay for it once); requests for different queries run
    concurrently. A server that returns fewer than ``k`` usable choices (some ignore ``n``;
    reasoning models may write nothing but whitespace) is asked again for the rest, with new
    seeds, up to ``2k`` samples in all; what is still missing then comes back as ``""``.
    Reasoning models are handled by :func:`clean_thought` (answer after ``</think>``, else the
    reasoning, from the content or the ``reasoning_content`` / ``reasoning`` field). Failures
    are retried with exponential backoff, then raised as :class:`ThinkerError`; a refusal that
    holds for every request (HTTP 401, 403, 404) is a :class:`ThinkerUnavailableError` at once.
    :meth:`check` asks for one token before any work, so a model name the server does not know,
    or a chat prompt for a model without a chat template, is refused once.

    The API key is read from the environment variable ``api_key_env`` (never passed on the
    command line, never logged).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        prompt: ThoughtPrompt | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        concurrency: int = 8,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        # a server does not say whether its model has a chat template: a chat prompt unless named
        self.prompt = prompt or PASSAGE_PROMPT
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

    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        if not queries:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(queries))) as pool:
            return list(pool.map(lambda q: self._think_one(q, thoughts, sampling), queries))

    def check(self, thoughts: int, sampling: SamplingConfig) -> None:
        """One request for one token: a refusal (HTTP 4xx) holds for every query and is raised;
        a server that does not answer now is left to each call's own retries and fallback."""
        import httpx

        body = {**self._request("?"), "max_tokens": 1, "temperature": 0.0, "n": 1}
        try:
            response = self._client.post(self._path, json=body)
        except httpx.HTTPError as exc:
            log.info("thinker %s did not answer the preflight request (%s); each query will try on its own", self.identity, exc)
            return
        if 400 <= response.status_code < 500 and response.status_code != 429:
            if response.status_code in _REFUSALS:
                remedy = "check --thinker-model (the model's name on that server) and the API key"
            elif self.prompt.chat:
                remedy = f"a model without a chat template (a base model) needs a completion prompt: --prompt {PASSAGE_RAW_PROMPT.name}"
            else:
                remedy = "the server may not serve completions for this model"
            raise ThinkerUnavailableError(
                f"{self.identity} refused the prompt {self.prompt.name!r}: HTTP {response.status_code} {response.text[:200]}; {remedy}"
            )

    @property
    def _path(self) -> str:
        return "/chat/completions" if self.prompt.chat else "/completions"

    def _request(self, query: str) -> dict:
        """The request body's model and prompt for one query."""
        text = self.prompt.render(query)
        if self.prompt.chat:
            return {"model": self.model, "messages": [{"role": "user", "content": text}]}
        return {"model": self.model, "prompt": text}

    def _think_one(self, query: str, thoughts: int, sampling: SamplingConfig) -> list[str]:
        kept: list[str] = []
        received = 0
        while len(kept) < thoughts and received < 2 * thoughts:
            body = {
                **self._request(query),
                "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "n": thoughts - len(kept),
            }
            if sampling.seed is not None:  # a sample asked again gets a seed of its own
                body["seed"] = sampling.seed + received
            choices = self._post(body)["choices"]
            if not choices:
                raise ThinkerError(f"{self.identity} returned no choices")
            received += len(choices)
            kept.extend(thought for thought in (_thought_of(c, self.prompt.stop) for c in choices) if thought)
        if len(kept) < thoughts:
            log.info("thinker %s wrote %d empty thoughts out of %d samples for one query", self.identity, received - len(kept), received)
        return kept[:thoughts] + [""] * (thoughts - len(kept))

    def _post(self, body: dict) -> dict:
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self._path, json=body)
                if response.status_code >= 500 or response.status_code == 429:
                    raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
                if response.status_code in _REFUSALS:  # no other query will fare better
                    raise ThinkerUnavailableError(f"{self.identity} refused the request: HTTP {response.status_code} {response.text[:200]}")
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


def _thought_of(choice: dict, stop: tuple[str, ...] = ()) -> str:
    """The thought in one choice. A completion's is its ``text``, cut at the prompt's ``stop``
    strings. Reasoning models served with a reasoning parser (vLLM, llama.cpp server, Ollama)
    return their reasoning apart from the answer, as ``reasoning_content`` (vLLM before 0.11,
    llama.cpp) or ``reasoning`` (vLLM 0.11+, Ollama); without a parser the ``<think>`` tags are
    in the content. See :func:`clean_thought`."""
    if "text" in choice:
        return clean_thought(cut_at_stop(choice.get("text") or "", stop))
    message = choice.get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return clean_thought(message.get("content") or "", reasoning if isinstance(reasoning, str) else None)
