"""Thought prompts.

A prompt is part of the thought cache key (through :attr:`ThoughtPrompt.key`), so changing its
text or version never serves thoughts that were written for another prompt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThoughtPrompt:
    """How a query is turned into the text the thinker continues.

    ``chat=True`` wraps ``template`` as a user message in the model's chat template (instruct
    models); ``chat=False`` feeds ``template`` raw (the unified O1 format).
    """

    name: str
    template: str
    chat: bool = True
    version: int = 1

    def render(self, query: str) -> str:
        return self.template.replace("{query}", query)

    @property
    def key(self) -> str:
        return f"{self.name}/v{self.version}/{'chat' if self.chat else 'raw'}:{self.template}"


#: Default for instruct thinkers. A task-shaped prompt measured better than a generic
#: "think about a plausible response" one with SmolLM2 (+2.0 vs +0.5 nDCG@10 on SciFact, see
#: ../shared/docs/baselines.md): small models otherwise answer with greetings and meta-talk.
PASSAGE_PROMPT = ThoughtPrompt(
    name="passage",
    template=(
        "Write one short, factual passage, in the style of an encyclopedia or a scientific "
        "abstract, that would answer or address the following. Do not greet, do not explain "
        "what you are doing.\n\n{query}"
    ),
    chat=True,
)

#: The paper's wording, kept for comparison and for thought synthesis.
PAPER_PROMPT = ThoughtPrompt(
    name="paper",
    template="Think about a plausible response to address the query.\nQuery: {query}",
    chat=True,
)

#: Unified O1 models: the raw special-token format the model was trained on.
UNIFIED_PROMPT = ThoughtPrompt(name="o1-unified", template="<query>{query}</query><thought>", chat=False)

PROMPTS = {p.name: p for p in (PASSAGE_PROMPT, PAPER_PROMPT, UNIFIED_PROMPT)}
