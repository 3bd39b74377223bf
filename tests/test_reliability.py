"""Reliability (issue 6): bad input, failing thinkers, concurrency; (issue 13) reasoning models
behind an OpenAI-compatible server and empty thoughts.

Real parts throughout: the offline MiniLM and SmolLM2, embedded Chroma, a real HTTP server on
127.0.0.1 for the OpenAI-compatible thinker (tests/openai_server.py), a tiny GPT-2 built here
whose generation really fails. Existing tests cover the basics (test_embedder, test_index,
test_sources, test_cache, test_cli); these add what the issue asks beyond them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from openai_server import OpenAIStub, answer_words, reasoning_words

from o1_retriever import InvalidQueryError, SamplingConfig, SourceError, ThinkerError, ThinkingEmbedder
from o1_retriever.encoders.base import normalize
from o1_retriever.index import ChromaIndex, Document, SourceReport, read_source
from o1_retriever.thinkers.base import clean_thought
from o1_retriever.thinkers.openai import OpenAIThinker

QUERIES = ["Which metal is liquid at room temperature?", "Why is the sky blue?", "How do bees communicate?", "What causes tides?"]


def cli(*args: str, home, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "O1_RETRIEVER_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "o1_retriever.cli", *args], capture_output=True, text=True, env=env, timeout=timeout)


# -- bad queries and documents -----------------------------------------------------------------
@pytest.mark.slow
def test_query_longer_than_the_encoder_window_is_cut_with_a_warning(encoder, caplog):
    plain = ThinkingEmbedder(None, encoder)
    long_query = "why does the tide rise " * 400  # ~2000 tokens, MiniLM takes 256
    with caplog.at_level(logging.WARNING):
        vector = plain.embed_query(long_query)
    assert vector.shape == (encoder.dimension,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert "longer than the encoder's 256 tokens were cut" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        plain.embed_query("a short question")
    assert "cut" not in caplog.text


@pytest.mark.slow
def test_long_query_with_thinking_is_cut_for_the_thinker_too(thinker, encoder, caplog, tmp_path):
    from o1_retriever.thinkers.transformers import TransformersThinker

    # the real SmolLM2 with a 24-token query window (default 256) keeps the prompt short
    short_window = TransformersThinker((thinker.model, thinker.tokenizer), name="smollm2", max_query_tokens=24)
    embedder = ThinkingEmbedder(short_window, encoder, thoughts=1, sampling=SamplingConfig(max_new_tokens=4), cache=None)
    with caplog.at_level(logging.WARNING):
        result = embedder.embed_query("tides and the moon " * 300, return_thoughts=True)
    assert result.thinking and len(result.thoughts) == 1 and result.vector.shape == (encoder.dimension,)
    assert "cut to 24 for the thinker" in caplog.text
    assert "longer than the encoder's 256 tokens were cut" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # adapt cuts most chunks on purpose: one warning, not one per query
        embedder.embed_query("waves and the sun " * 300)
    assert "for the thinker" not in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["\ud800 broken", "ok \udfff"])
def test_lone_surrogates_are_refused_not_crashing_the_tokenizer(encoder, bad):
    plain = ThinkingEmbedder(None, encoder)
    with pytest.raises(InvalidQueryError, match="not valid Unicode"):
        plain.embed_query(bad)
    with pytest.raises(InvalidQueryError, match="document 1 is not valid Unicode"):
        plain.embed_documents(["fine", bad])


@pytest.mark.slow
def test_index_refuses_a_broken_document_clearly_and_keeps_the_rest(encoder, tmp_path):
    index = ChromaIndex("docs", ThinkingEmbedder(None, encoder), path=tmp_path)
    index.add([Document("a", "alpha")], show_progress=False)
    with pytest.raises(InvalidQueryError):
        index.add([Document("b", "beta \ud800")], show_progress=False)
    assert index.count() == 1


def test_jsonl_with_invalid_utf8_control_characters_and_surrogate_escapes_is_repaired(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(
        b'{"_id": "a", "title": "Caf\xe9", "text": "latte"}\n'
        b'{"_id": "b", "text": "bell\\u0007 and nul\\u0000"}\n'
        b'{"_id": "c", "text": "half \\ud800 pair"}\n'
    )
    report = SourceReport()
    docs = {d.id: d.text for d in read_source(tmp_path, report)}
    assert docs["a"] == "Caf\ufffd latte" and docs["b"] == "bell and nul" and "\ud800" not in docs["c"]
    assert report.repaired == [
        "corpus.jsonl:1: invalid UTF-8 replaced",
        "corpus.jsonl:2 (b): control characters removed",
        "corpus.jsonl:3 (c): lone surrogates replaced",
    ]


def test_beir_folder_without_corpus_names_the_missing_file(tmp_path):
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "?"}\n')
    with pytest.raises(SourceError, match="corpus.jsonl is missing"):
        read_source(tmp_path)


def test_beir_corpus_with_a_malformed_line_names_the_line(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "ok"}\n{"_id": "c", "text": \n')
    with pytest.raises(SourceError, match=r"corpus.jsonl:3: not a JSON line"):
        list(read_source(tmp_path))


def test_cli_index_of_an_empty_corpus_fails_in_one_line_before_loading_models(tmp_path, model_home):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.md").write_text("  \n\n ")
    started = time.monotonic()
    done = cli("index", str(tmp_path / "empty"), "--db", str(tmp_path / "db"), home=model_home)
    assert done.returncode == 2, done.stderr
    assert "no documents found" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "db").exists()  # nothing was created
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_cli_index_reports_repairs_and_skips_in_its_summary(tmp_path, model_home):
    src = tmp_path / "src"
    src.mkdir()
    (src / "latin1.txt").write_bytes(b"Caf\xe9 au lait is coffee with milk.")
    (src / "ctrl.md").write_text("Bells \x07 ring \x1b[31m in red.")
    (src / "empty.md").write_text("\n\n")
    done = cli("index", str(src), "--db", str(tmp_path / "db"), "--thinker", "none", home=model_home)
    assert done.returncode == 0, done.stderr
    assert "indexed 2 documents" in done.stderr
    assert "repaired latin1.txt: invalid UTF-8 replaced" in done.stderr
    assert "repaired ctrl.md: control characters removed" in done.stderr
    assert "skipped empty.md: empty" in done.stderr


# -- thinkers that fail ------------------------------------------------------------------------
def test_openai_thinker_retries_with_backoff_then_answers():
    with OpenAIStub(fail_first=2) as server:
        thinker = OpenAIThinker(server.url, "stub", retries=3, backoff=0.2)
        thoughts = thinker.think(["why?"], 2, SamplingConfig(max_new_tokens=8))
        thinker.close()
    assert len(server.requests) == 3
    times = [t for t, _, _ in server.requests]
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4  # exponential backoff
    assert thoughts == [["thought 0 about " + server.requests[-1][2]["messages"][0]["content"][-20:],
                         "thought 1 about " + server.requests[-1][2]["messages"][0]["content"][-20:]]]


def test_openai_thinker_times_out_retries_and_raises():
    with OpenAIStub(hang=10) as server:
        thinker = OpenAIThinker(server.url, "stub", timeout=0.3, retries=1, backoff=0.05)
        started = time.monotonic()
        with pytest.raises(ThinkerError, match="failed after 2 attempts.*timed out"):
            thinker.think(["why?"], 1, SamplingConfig())
        elapsed = time.monotonic() - started
        thinker.close()
    assert len(server.requests) == 2 and elapsed < 3


def test_openai_api_key_comes_from_the_environment_and_is_sent(monkeypatch):
    monkeypatch.setenv("MY_THINKER_KEY", "sk-test-123")
    with OpenAIStub() as server:
        thinker = OpenAIThinker(server.url, "stub", api_key_env="MY_THINKER_KEY")
        thinker.think(["q"], 1, SamplingConfig())
        thinker.close()
    headers = {k.lower(): v for k, v in server.requests[0][1].items()}
    assert headers["authorization"] == "Bearer sk-test-123"
    assert "sk-test-123" not in thinker.identity


@pytest.mark.slow
def test_thinker_down_falls_back_visibly_and_strict_raises(encoder, tmp_path, caplog, sample_corpus):
    with OpenAIStub(fail_always=True) as server:
        lenient = ThinkingEmbedder(OpenAIThinker(server.url, "stub", retries=2, backoff=0.05), encoder)
        index = ChromaIndex("docs", lenient, path=tmp_path)
        index.add(read_source(sample_corpus), show_progress=False)
        with caplog.at_level(logging.WARNING):
            result = index.search("Which metal is liquid at room temperature?", k=2)
        assert result.fallback and not result.thinking and result.thoughts == []
        assert result.to_dict()["fallback"] is True
        assert result.hits[0].id == "mercury.md#0"  # the plain query still finds it
        assert "retrying in" in caplog.text and "falling back to plain query embeddings" in caplog.text
        assert len(server.requests) == 4  # the one-token preflight (a server down is not a refusal), then 1 try + 2 retries
        strict = ThinkingEmbedder(OpenAIThinker(server.url, "stub", retries=0), encoder, strict=True)
        with pytest.raises(ThinkerError, match="HTTP 503"):
            ChromaIndex("docs", strict, path=tmp_path).search("Which metal?", k=2)


@pytest.mark.slow
def test_cli_search_json_carries_the_fallback_flag_and_strict_exits_2(encoder, tmp_path, model_home, sample_corpus):
    ChromaIndex("docs", ThinkingEmbedder(None, encoder), path=tmp_path / "db").add(read_source(sample_corpus), show_progress=False)
    with OpenAIStub(fail_always=True) as server:
        # --mode dense: the fallback plumbing of dense search is under test, not the fusion's ranking
        common = ["--collection", "docs", "--db", str(tmp_path / "db"), "--mode", "dense", "--thinker", server.url, "--thinker-model", "stub", "--cache", "none", "--k", "2"]
        done = cli("search", "Which metal is liquid at room temperature?", *common, "--json", home=model_home)
        assert done.returncode == 0, done.stderr
        payload = json.loads(done.stdout)
        assert payload["fallback"] is True and payload["thoughts"] == []
        assert payload["results"][0]["id"] == "mercury.md#0"
        assert "falling back to plain query embeddings" in " ".join(done.stderr.split())  # rich wraps lines
        strict = cli("search", "Which metal is liquid at room temperature?", *common, "--strict", home=model_home)
    assert strict.returncode == 2 and "error:" in strict.stderr and "HTTP 503" in strict.stderr
    assert "Traceback" not in strict.stderr


@pytest.mark.slow
def test_cli_thinker_timeout_bounds_a_hanging_server(encoder, tmp_path, model_home, sample_corpus):
    ChromaIndex("docs", ThinkingEmbedder(None, encoder), path=tmp_path / "db").add(read_source(sample_corpus), show_progress=False)
    with OpenAIStub(hang=30) as server:
        done = cli("search", "Which metal is liquid at room temperature?", "--collection", "docs", "--db", str(tmp_path / "db"), "--mode", "dense",
                   "--thinker", server.url, "--thinker-model", "stub", "--thinker-timeout", "0.5", "--cache", "none",
                   "--k", "2", "--json", home=model_home)
        requests = len(server.requests)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["fallback"] is True and payload["results"][0]["id"] == "mercury.md#0"
    assert requests == 5  # the preflight, then 1 try + 3 retries, each cut at 0.5 s instead of the 30 s the server hangs
    assert "timed out" in " ".join(done.stderr.split())


@pytest.mark.slow
def test_a_generation_error_in_the_transformers_backend_falls_back(thinker, encoder, caplog):
    """A tiny GPT-2 with an 8-position window: generating from a longer prompt really fails
    inside transformers (IndexError in the position embedding)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from o1_retriever.thinkers.transformers import TransformersThinker

    tok = thinker.tokenizer
    config = GPT2Config(n_positions=8, n_embd=16, n_layer=1, n_head=2, vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    tiny = TransformersThinker((GPT2LMHeadModel(config).eval(), tok), name="tiny-gpt2")
    lenient = ThinkingEmbedder(tiny, encoder, thoughts=1, sampling=SamplingConfig(max_new_tokens=4))
    with caplog.at_level(logging.WARNING):
        result = lenient.embed_query("Why is the sky blue?", return_thoughts=True)
    assert result.fallback and "transformers:tiny-gpt2 failed to think" in caplog.text
    assert np.allclose(result.vector, encoder.encode_queries(["Why is the sky blue?"])[0], atol=1e-6)
    strict = ThinkingEmbedder(tiny, encoder, thoughts=1, sampling=SamplingConfig(max_new_tokens=4), strict=True)
    with pytest.raises(ThinkerError, match="index out of range"):
        strict.embed_query("Why is the sky blue?")


# -- concurrency -------------------------------------------------------------------------------
@pytest.mark.slow
def test_threads_and_asyncio_tasks_get_the_sequential_results(thinker, encoder, tmp_path, sample_corpus):
    sampling = SamplingConfig(max_new_tokens=4)  # short thoughts: the point is concurrency
    sequential = ThinkingEmbedder(thinker, encoder, thoughts=1, sampling=sampling, cache=tmp_path / "seq.sqlite")
    index = ChromaIndex("docs", sequential, path=tmp_path / "db")
    index.add(read_source(sample_corpus), show_progress=False)
    expected = {q: index.search(q, k=3) for q in QUERIES}
    expected_plain = {q: sequential.embed_query(q, thinking=False) for q in QUERIES}

    # one shared embedder with an empty cache: the threads really generate, concurrently
    shared = ThinkingEmbedder(thinker, encoder, thoughts=1, sampling=sampling, cache=tmp_path / "shared.sqlite")
    shared_index = ChromaIndex("docs", shared, path=tmp_path / "db")
    jobs = QUERIES * 2  # 8 calls, each query twice at once

    def same(got, want):
        assert got.thoughts == want.thoughts
        assert [h.id for h in got.hits] == [h.id for h in want.hits]
        assert np.allclose([h.score for h in got.hits], [h.score for h in want.hits], atol=1e-5)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: shared_index.search(q, k=3), jobs))
        vectors = list(pool.map(lambda q: shared.embed_query(q, thinking=False), jobs))
    for q, got, vec in zip(jobs, results, vectors):
        same(got, expected[q])
        assert np.allclose(vec, expected_plain[q], atol=1e-6)
    assert len(shared.cache) == len(QUERIES)  # one entry per query, however many writers

    async def many():
        searches = [asyncio.to_thread(shared_index.search, q, 3) for q in jobs]
        plain = [asyncio.to_thread(shared.embed_query, q, thinking=False) for q in jobs]
        return await asyncio.gather(*searches), await asyncio.gather(*plain)

    results, vectors = asyncio.run(many())
    for q, got, vec in zip(jobs, results, vectors):
        same(got, expected[q])
        assert np.allclose(vec, expected_plain[q], atol=1e-6)


def _think_in_a_process(url: str, cache: str, queries: list[str], out: str) -> None:
    from o1_retriever import ThinkingEmbedder, ThoughtCache
    from o1_retriever.thinkers.openai import OpenAIThinker

    # think() never touches the encoder: this test is about the cache between processes
    embedder = ThinkingEmbedder(OpenAIThinker(url, "stub"), encoder=None, thoughts=2, cache=ThoughtCache(cache))
    Path(out).write_text(json.dumps(embedder.think(queries)))


def test_two_processes_thinking_through_one_cache_agree(tmp_path):
    """Each request to the server answers differently, so two processes that generate the same
    queries at once would disagree, unless the cache settles on the first writer's thoughts."""
    import multiprocessing

    queries = [f"question number {i}?" for i in range(24)]
    ctx = multiprocessing.get_context("spawn")
    with OpenAIStub(numbered=True) as server:
        procs = [
            ctx.Process(target=_think_in_a_process, args=(server.url, str(tmp_path / "c.sqlite"), order, str(tmp_path / f"out{n}.json")))
            for n, order in enumerate([queries, queries[::-1]])
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    first, second = (json.loads((tmp_path / f"out{n}.json").read_text()) for n in range(2))
    assert first == second[::-1]  # the same thoughts for every query in both processes
    from o1_retriever import ThoughtCache

    assert len(ThoughtCache(tmp_path / "c.sqlite")) == len(queries)
    assert len({t for group in first for t in group}) == 2 * len(queries)  # real, distinct answers


# -- thinkers in the wild: reasoning models and empty thoughts ---------------------------------
# The real HTTP test server answers like a reasoning model behind vLLM / llama.cpp / Ollama:
# `<think>reasoning</think> answer`, cut at max_tokens words (tests/openai_server.py).
_ABOUT = "Why is the sky blue?"[-20:]
_FULL = 64  # budget for reasoning + closing tag + answer
_INSIDE = 10  # budget that ends inside the reasoning: no closing tag


def _answer(i: int) -> str:
    return " ".join(answer_words(i, _ABOUT))


def _reasoning(i: int, tokens: int | None = None) -> str:
    return " ".join(reasoning_words(i, _ABOUT)[:tokens])


@pytest.mark.parametrize(
    ("server", "budget", "expected"),
    [
        ({}, _FULL, _answer),  # tags in the content: the answer after </think>
        ({"template_opens_think": True}, _FULL, _answer),  # only </think> is generated
        ({}, _INSIDE, lambda i: _reasoning(i, _INSIDE - 1)),  # cut inside: the reasoning so far, no tag
        ({"template_opens_think": True}, _INSIDE, lambda i: _reasoning(i, _INSIDE)),
        ({}, 16, _reasoning),  # closed, but no answer fits: the whole reasoning
        ({"reasoning_field": "reasoning_content"}, _FULL, _answer),  # vLLM < 0.11, llama.cpp server
        ({"reasoning_field": "reasoning_content"}, _INSIDE, lambda i: _reasoning(i, _INSIDE - 1)),  # content is null
        ({"reasoning_field": "reasoning_content"}, 16, _reasoning),  # content is ""
        ({"reasoning_field": "reasoning"}, _FULL, _answer),  # vLLM 0.11+, Ollama
        ({"reasoning_field": "reasoning"}, _INSIDE, lambda i: _reasoning(i, _INSIDE - 1)),
    ],
    ids=["tags", "template-opens-think", "tags-cut", "template-opens-think-cut", "tags-no-answer",
         "reasoning_content", "reasoning_content-cut", "reasoning_content-no-answer", "reasoning", "reasoning-cut"],
)
def test_a_reasoning_model_s_thought_is_its_answer_or_else_its_reasoning(server, budget, expected):
    with OpenAIStub(reasoning=True, **server) as stub:
        thinker = OpenAIThinker(stub.url, "deepseek-r1-distill")
        thoughts = thinker.think(["Why is the sky blue?"], 2, SamplingConfig(max_new_tokens=budget))
        thinker.close()
        assert len(stub.requests) == 1  # every choice was usable: nothing asked again
    assert thoughts == [[expected(0), expected(1)]]
    assert not any("think>" in t for t in thoughts[0])


@pytest.mark.parametrize(
    ("text", "reasoning", "thought"),
    [
        ("<think>\nThe user asks.\n</think>\n\nTides follow the Moon.", None, "Tides follow the Moon."),
        ("<think>a</think><think>b</think> answer", None, "answer"),  # several blocks: after the last
        ("<think>\n\n</think>\n\n", None, ""),  # an empty think block and no answer
        ("<think>\nhalf a thought", "", "half a thought"),
        ("", "reasoning only", "reasoning only"),
        ("plain text<|im_end|>", None, "plain text"),  # models without tags are untouched
    ],
)
def test_clean_thought_extracts_what_each_backend_embeds(text, reasoning, thought):
    assert clean_thought(text, reasoning) == thought


def test_empty_choices_are_asked_again_with_new_seeds():
    with OpenAIStub(blank=2) as stub:  # the first two choices: "" and whitespace
        thinker = OpenAIThinker(stub.url, "stub")
        thoughts = thinker.think(["Why is the sky blue?"], 3, SamplingConfig(seed=7))
        thinker.close()
    assert all(t.strip() for t in thoughts[0]) and len(thoughts[0]) == 3
    bodies = [body for _, _, body in stub.requests]
    assert [(b["n"], b["seed"]) for b in bodies] == [(3, 7), (2, 10)]  # 2 asked again, seed past the 3 received


def test_asking_again_is_bounded_and_what_stays_empty_is_returned_empty():
    with OpenAIStub(blank=-1) as stub:  # nothing usable, ever
        thinker = OpenAIThinker(stub.url, "stub")
        thoughts = thinker.think(["Why is the sky blue?"], 2, SamplingConfig())
        thinker.close()
    assert thoughts == [["", ""]]
    assert len(stub.requests) == 2 and stub.choices_sent == 4  # at most 2k samples


def test_a_query_without_usable_thoughts_falls_back_visibly_and_is_not_cached(encoder, tmp_path, caplog):
    from o1_retriever import ThoughtCache

    cache = ThoughtCache(tmp_path / "c.sqlite")
    with OpenAIStub(blank=-1) as stub:
        embedder = ThinkingEmbedder(OpenAIThinker(stub.url, "stub"), encoder, thoughts=2, cache=cache)
        with caplog.at_level(logging.WARNING):
            result = embedder.embed_query("Why is the sky blue?", return_thoughts=True)
        assert result.fallback and not result.thinking and result.thoughts == []
        assert np.allclose(result.vector, encoder.encode_queries(["Why is the sky blue?"])[0], atol=1e-6)
        assert "wrote no usable thought for 1 of 1 queries" in caplog.text and "fall back" in caplog.text
        assert len(cache) == 0  # a fallback is not remembered: the next call asks again
        strict = ThinkingEmbedder(OpenAIThinker(stub.url, "stub"), encoder, thoughts=2, cache=None, strict=True)
        with pytest.raises(ThinkerError, match="no usable thought"):
            strict.embed_query("Why is the sky blue?")


def test_only_the_query_without_thoughts_falls_back_in_a_batch(encoder, tmp_path):
    # one request at a time, so after the preflight's one sample the first query gets all 2k=4
    # blank samples and the second none
    with OpenAIStub(blank=5) as stub:
        embedder = ThinkingEmbedder(OpenAIThinker(stub.url, "stub", concurrency=1), encoder, thoughts=2, cache=tmp_path / "c.sqlite")
        first, second = embedder.embed_queries(["Why is the sky blue?", "What causes tides?"], return_thoughts=True)
    assert first.fallback and not first.thinking and first.thoughts == []
    assert not second.fallback and second.thinking and len(second.thoughts) == 2


def test_empty_thoughts_are_dropped_and_the_cache_keeps_what_was_kept(encoder, tmp_path):
    from o1_retriever import ThoughtCache

    cache = ThoughtCache(tmp_path / "c.sqlite")
    # k=3: after the preflight's one sample, the first 3 + 1 samples are blank, so after 2k=6
    # samples only 2 are usable
    with OpenAIStub(blank=5) as stub:
        embedder = ThinkingEmbedder(OpenAIThinker(stub.url, "stub"), encoder, thoughts=3, aggregation="o1", cache=cache)
        result = embedder.embed_query("Why is the sky blue?", return_thoughts=True)
        requests = len(stub.requests)
    assert requests == 3 and not result.fallback and result.thinking  # the preflight and 2
    assert len(result.thoughts) == 2 and all(t.strip() for t in result.thoughts)
    strings = [encoder.query_text("Why is the sky blue?", t) for t in result.thoughts]  # no string for the empty one
    assert np.allclose(result.vector, normalize(encoder.encode_queries(strings).mean(axis=0, keepdims=True))[0], atol=1e-5)
    assert list(cache.get_many([embedder._key("Why is the sky blue?", 3)]).values()) == [result.thoughts]


@pytest.mark.slow
def test_cli_search_json_flags_a_query_whose_thoughts_were_all_empty(encoder, tmp_path, model_home, sample_corpus):
    ChromaIndex("docs", ThinkingEmbedder(None, encoder), path=tmp_path / "db").add(read_source(sample_corpus), show_progress=False)
    with OpenAIStub(blank=-1) as server:
        done = cli("search", "Which metal is liquid at room temperature?", "--collection", "docs", "--db", str(tmp_path / "db"), "--mode", "dense",
                   "--thinker", server.url, "--thinker-model", "stub", "--cache", str(tmp_path / "c.sqlite"), "--k", "2", "--json",
                   home=model_home)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["fallback"] is True and payload["thoughts"] == []
    assert payload["results"][0]["id"] == "mercury.md#0"
    assert "no usable thought" in " ".join(done.stderr.split())


@pytest.mark.slow
def test_cli_cache_max_rows_bounds_the_cache_a_search_fills(encoder, tmp_path, model_home, sample_corpus):
    from o1_retriever import ThoughtCache

    ChromaIndex("docs", ThinkingEmbedder(None, encoder), path=tmp_path / "db").add(read_source(sample_corpus), show_progress=False)
    cache = tmp_path / "c.sqlite"
    with OpenAIStub() as server:
        for query in QUERIES[:3]:
            done = cli("search", query, "--collection", "docs", "--db", str(tmp_path / "db"), "--thinker", server.url,
                       "--thinker-model", "stub", "--cache", str(cache), "--cache-max-rows", "2", "--k", "1", "--json", home=model_home)
            assert done.returncode == 0, done.stderr
    assert len(ThoughtCache(cache)) == 2


def test_the_embedder_cleans_every_thinker_s_output_and_old_cached_rows(tmp_path):
    from o1_retriever import Thinker, ThoughtCache
    from o1_retriever.prompts import PASSAGE_PROMPT

    class RawThinker(Thinker):  # a third-party backend that returns raw generations: plumbing only
        prompt = PASSAGE_PROMPT
        identity = "raw"

        def think(self, queries, k, sampling):
            return [["<think>\nthe user asks\n</think>\n\nTides follow the Moon.", "<think>\ncut short", " \n"] for _ in queries]

    cache = ThoughtCache(tmp_path / "c.sqlite")
    embedder = ThinkingEmbedder(RawThinker(), encoder=None, thoughts=3, cache=cache)  # think() never encodes
    assert embedder.think(["What causes tides?"]) == [["Tides follow the Moon.", "cut short"]]
    key = embedder._key("What causes tides?", 3)
    assert cache.get_many([key]) == {key: ["Tides follow the Moon.", "cut short"]}  # what was kept
    # a row an earlier version cached with the tags in it is served clean
    old = embedder._key("Why is the sky blue?", 3)
    cache.put_many([(old, "Why is the sky blue?", ["<think>scattering</think> Rayleigh scattering.", ""])])
    assert embedder.think(["Why is the sky blue?"]) == [["Rayleigh scattering."]]
