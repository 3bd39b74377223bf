"""Thought prompts.

A prompt is part of the thought cache key (through :attr:`ThoughtPrompt.key`), so changing its
text or version never serves thoughts that were written for another prompt.

Instruct models get a chat prompt (wrapped in the model's chat template); base (completion)
models, which have no chat template, get a completion prompt (``chat=False``) that they continue.
When no prompt is named (:data:`AUTO`) the thinker chooses with :func:`prompt_for_model`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from o1_retriever.errors import ThinkerUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThoughtPrompt:
    """How a query is turned into the text the thinker continues.

    ``chat=True`` wraps ``template`` as a user message in the model's chat template (instruct
    models); ``chat=False`` feeds ``template`` raw, for the model to continue (base models, the
    unified O1 format). ``stop``: strings that end a thought (a base model writes on past its
    passage, e.g. into a next "Query:"); the thought is cut before the first one.
    """

    name: str
    template: str
    chat: bool = True
    version: int = 1
    stop: tuple[str, ...] = ()

    def render(self, query: str) -> str:
        return self.template.replace("{query}", query)

    @property
    def key(self) -> str:
        # stop strings join the key only when there are some: older prompts keep their keys
        stop = f"|stop={list(self.stop)!r}" if self.stop else ""
        return f"{self.name}/v{self.version}/{'chat' if self.chat else 'raw'}:{self.template}{stop}"


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

#: Base (completion) models: the passage prompt as text to continue, in the form of HyDE's original
#: completion prompts ("... Passage:"), the thought ending at a blank line or where a base model
#: starts a next query of its own.
PASSAGE_RAW_PROMPT = ThoughtPrompt(
    name="passage-raw",
    template=(
        "Write one short, factual passage, in the style of an encyclopedia or a scientific "
        "abstract, that answers or addresses the query.\n\nQuery: {query}\nPassage:"
    ),
    chat=False,
    stop=("\n\n", "\nQuery:", "\nQuestion:", "\nQ:"),
)

PROMPTS = {p.name: p for p in (PASSAGE_PROMPT, PASSAGE_RAW_PROMPT, PAPER_PROMPT, UNIFIED_PROMPT)}

#: The prompt name that names none: the thinker takes ``passage`` when its model has a chat
#: template and ``passage-raw`` when it has none (:func:`prompt_for_model`).
AUTO = "auto"

#: every name ``--prompt`` accepts
PROMPT_NAMES = (AUTO, *PROMPTS)

_announced: set[str] = set()  # models whose automatic completion prompt was logged


def named_prompt(name: str) -> ThoughtPrompt | None:
    """The prompt called ``name`` (one of :data:`PROMPT_NAMES`); ``None`` for :data:`AUTO`, which
    leaves the choice to the thinker. Callers check the name first, to raise their own error."""
    return None if name == AUTO else PROMPTS[name]


def prompt_for_model(prompt: ThoughtPrompt | None, *, has_chat_template: bool, model: str) -> ThoughtPrompt:
    """The prompt a thinker uses: ``prompt`` when one was named, else :data:`PASSAGE_PROMPT` for
    a model with a chat template and :data:`PASSAGE_RAW_PROMPT` for one without (a base model;
    the choice is logged once per model and process)."""
    if prompt is not None:
        return prompt
    if has_chat_template:
        return PASSAGE_PROMPT
    if model not in _announced:
        _announced.add(model)
        log.warning("%s has no chat template: it thinks with the completion prompt %r (name another with --prompt)", model, PASSAGE_RAW_PROMPT.name)
    return PASSAGE_RAW_PROMPT


def no_chat_template(model: str, prompt: ThoughtPrompt) -> ThinkerUnavailableError:
    """The refusal of a chat prompt by a model that has no chat template (a base model)."""
    return ThinkerUnavailableError(
        f"{model} has no chat template, so it cannot think with the chat prompt {prompt.name!r}: "
        f"use a completion prompt (--prompt {PASSAGE_RAW_PROMPT.name}), or name no prompt to have one chosen"
    )


#: Index-time thinking (``o1-retriever adapt``): a question grounded in a passage, which the
#: passage answers. A small model reads better than it knows, so it is asked to read. The
#: instruction comes after the passage, the last thing the model reads before it answers.
QUESTION_PROMPT = ThoughtPrompt(
    name="question",
    template="{query}\n\nWrite one short question that the passage above answers. Reply with the question only.",
    chat=True,
)
