"""A thinker that cannot think is refused at once; base models think with a completion prompt
(issue 19).

Real parts: a GGUF without a chat template written here from the SmolLM2 GGUF (the ``gguf``
package's own metadata copier, minus ``tokenizer.chat_template``, so it is a base model to
llama.cpp), llama.cpp, SmolLM2 through transformers with its tokenizer's template removed,
MiniLM, embedded Chroma, ``o1-retriever eval`` end to end, and the HTTP test server
(tests/openai_server.py) for what an OpenAI-compatible server answers (its texts are canned:
that part is plumbing for status codes, endpoints and stop strings).
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
from openai_server import OpenAIStub
from typer.testing import CliRunner

from o1_retriever import EmbedderConfig, ModelLoadError, SamplingConfig, ThinkerUnavailableError, ThinkingEmbedder
from o1_retriever.prompts import PASSAGE_PROMPT, PASSAGE_RAW_PROMPT, PROMPT_NAMES, UNIFIED_PROMPT, named_prompt
from o1_retriever.thinkers.base import cut_at_stop
from o1_retriever.thinkers.openai import OpenAIThinker

runner = CliRunner()
SHORT = SamplingConfig(max_new_tokens=16)
QUERY = "Which metal is liquid at room temperature?"


def _tiny_beir(root: Path, sample_corpus: Path, answers: bool = False) -> Path:
    """A BEIR folder of the bundled sample corpus (13 documents) and 4 questions about it (with
    gold answers in their metadata for rag-eval)."""
    root.mkdir(parents=True)
    docs = sorted(sample_corpus.glob("*.md"))
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d.stem, "title": "", "text": d.read_text()}) + "\n" for d in docs))
    questions = {"q1": ("Which metal is liquid at room temperature?", "mercury"), "q2": ("Why is the sky blue?", "rayleigh_scattering"),
                 "q3": ("How do bees tell where flowers are?", "waggle_dance"), "q4": ("What makes the tides?", "tides")}
    meta = (lambda d: {"answer": d.replace("_", " ")}) if answers else (lambda d: {})
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t, "metadata": meta(d)}) + "\n" for q, (t, d) in questions.items()))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in questions.items()))
    return root


# -- prompts ---------------------------------------------------------------------------------------
def test_the_completion_prompt_has_its_own_key_and_older_keys_are_unchanged():
    assert PASSAGE_RAW_PROMPT.chat is False and PASSAGE_RAW_PROMPT.name in PROMPT_NAMES
    assert PASSAGE_RAW_PROMPT.key != PASSAGE_PROMPT.key and "stop=" in PASSAGE_RAW_PROMPT.key
    # prompts without stop strings keep the key they had (their cached thoughts stay valid)
    assert PASSAGE_PROMPT.key == f"passage/v1/chat:{PASSAGE_PROMPT.template}"
    assert UNIFIED_PROMPT.key == "o1-unified/v1/raw:<query>{query}</query><thought>"
    assert named_prompt("auto") is None and named_prompt("passage-raw") is PASSAGE_RAW_PROMPT


def test_a_completion_is_cut_at_its_first_stop_after_some_text():
    stop = PASSAGE_RAW_PROMPT.stop
    assert cut_at_stop(" Mercury is a metal.\n\nQuery: next one", stop) == " Mercury is a metal."
    assert cut_at_stop("\n\nMercury is a metal.\nQuery: next", stop) == "\n\nMercury is a metal."  # a leading blank line is not the end
    assert cut_at_stop("no stop here", stop) == "no stop here"


def test_an_unknown_prompt_is_one_clear_error(model_home):
    from o1_retriever.cli import app

    with pytest.raises(ModelLoadError, match="unknown prompt 'raw'; choose one of auto, passage, passage-raw"):
        ThinkingEmbedder.from_config(EmbedderConfig(thinker="llamacpp:smollm2", prompt="raw"))
    help_text = runner.invoke(app, ["search", "--help"], terminal_width=400).output
    for name in PROMPT_NAMES:
        assert name in help_text


# -- transformers: a tokenizer without a chat template ---------------------------------------------
@pytest.mark.slow
def test_a_transformers_base_model_is_refused_with_a_chat_prompt_and_thinks_with_the_completion_prompt(thinker, encoder, caplog):
    from o1_retriever.thinkers.transformers import TransformersThinker

    base_tokenizer = copy.copy(thinker.tokenizer)
    base_tokenizer.chat_template = None  # SmolLM2's weights, as a base model with no template
    pair = (thinker.model, base_tokenizer)
    chat = ThinkingEmbedder(TransformersThinker(pair, prompt=PASSAGE_PROMPT, name="smollm2-base"), encoder, thoughts=1, sampling=SHORT)
    with pytest.raises(ThinkerUnavailableError, match=r"transformers:smollm2-base\S* has no chat template.*--prompt passage-raw"):
        chat.embed_query(QUERY)  # not strict, and still no fallback
    with caplog.at_level(logging.WARNING):
        auto = TransformersThinker(pair, name="smollm2-base")
    assert auto.prompt is PASSAGE_RAW_PROMPT and "completion prompt 'passage-raw'" in caplog.text
    result = ThinkingEmbedder(auto, encoder, thoughts=1, sampling=SHORT).embed_query(QUERY, return_thoughts=True)
    assert result.thinking and not result.fallback and result.thoughts[0].strip()
    assert "\n\n" not in result.thoughts[0] and "Query:" not in result.thoughts[0]


# -- OpenAI-compatible servers ---------------------------------------------------------------------
def test_a_server_that_does_not_serve_the_model_is_refused_once(encoder):
    with OpenAIStub(models=("served-model",)) as server:
        embedder = ThinkingEmbedder(OpenAIThinker(server.url, "no-such-model", retries=2, backoff=0.01), encoder, cache=None)
        with pytest.raises(ThinkerUnavailableError, match=r"refused the prompt 'passage': HTTP 404 .*check --thinker-model"):
            embedder.embed_queries([QUERY, "Why is the sky blue?"])  # not strict: refused all the same
        assert len(server.requests) == 1  # the one-token preflight, no retries, no query sent
        ok = ThinkingEmbedder(OpenAIThinker(server.url, "served-model"), encoder, cache=None)
        assert ok.embed_query(QUERY, return_thoughts=True).thinking


def test_a_server_base_model_refuses_the_chat_prompt_and_completes_the_raw_one(encoder):
    with OpenAIStub(chat_template=False) as server:
        chat = ThinkingEmbedder(OpenAIThinker(server.url, "base"), encoder, cache=None)
        with pytest.raises(ThinkerUnavailableError, match="HTTP 400 .*--prompt passage-raw"):
            chat.embed_query(QUERY)
        server.paths.clear()
        raw = ThinkingEmbedder(OpenAIThinker(server.url, "base", prompt=PASSAGE_RAW_PROMPT), encoder, thoughts=2, cache=None)
        result = raw.embed_query(QUERY, return_thoughts=True)
        about = PASSAGE_RAW_PROMPT.render(QUERY)[-20:]  # the server names the end of the prompt it got
        assert result.thinking and result.thoughts == [f"thought 0 about {about}", f"thought 1 about {about}"]
        assert server.paths and all(p == "/v1/completions" for p in server.paths)  # preflight and thoughts alike


def test_a_server_down_at_preflight_is_left_to_each_query_s_fallback(encoder, caplog):
    with OpenAIStub(fail_always=True) as server:
        embedder = ThinkingEmbedder(OpenAIThinker(server.url, "stub", retries=0), encoder, cache=None)
        with caplog.at_level(logging.WARNING):
            result = embedder.embed_query(QUERY, return_thoughts=True)
        assert result.fallback and "falling back to plain query embeddings" in caplog.text


@pytest.mark.slow
def test_every_evaluation_entry_point_refuses_before_embedding_the_corpus(tmp_path, sample_corpus, model_home):
    """eval, calibrate, frontier and rag-eval with a server that does not serve the model: one
    ThinkerUnavailableError each, before the corpus is embedded (no document store is created)."""
    from o1_retriever.evaluation import load_beir
    from o1_retriever.evaluation.calibration import calibrate_gate
    from o1_retriever.evaluation.frontier import frontier
    from o1_retriever.evaluation.rag import evaluate_rag
    from o1_retriever.evaluation.retrieval import evaluate_retrieval, parse_systems

    data = load_beir(_tiny_beir(tmp_path / "beir", sample_corpus, answers=True))
    db = tmp_path / "db"
    with OpenAIStub(models=("served-model",)) as server:
        config = EmbedderConfig(thinker=server.url, thinker_model="no-such-model", cache="none")
        runs = {
            "eval": lambda: evaluate_retrieval(data, parse_systems("dense,thinking"), config, db=db, show_progress=False),
            "calibrate": lambda: calibrate_gate(data, config, db=db, show_progress=False),
            "frontier": lambda: frontier(data, config, thoughts=[1], tokens=[8], db=db, show_progress=False),
            "rag-eval": lambda: evaluate_rag(data, config, db=db, show_progress=False),
        }
        for name, run in runs.items():
            with pytest.raises(ThinkerUnavailableError, match="HTTP 404"):
                run()
            assert not db.exists(), name
        assert {body["model"] for _, _, body in server.requests} == {"no-such-model"} and len(server.requests) == len(runs)


@pytest.mark.slow
def test_search_refuses_in_one_line_and_the_adapter_before_its_first_query(encoder, tmp_path, sample_corpus, model_home):
    from o1_retriever.cli import app
    from o1_retriever.index import ChromaIndex, read_source

    ChromaIndex("docs", ThinkingEmbedder(None, encoder), path=tmp_path / "db").add(read_source(sample_corpus), show_progress=False)
    with OpenAIStub(models=("served-model",)) as server:
        done = runner.invoke(app, ["search", QUERY, "--collection", "docs", "--db", str(tmp_path / "db"), "--thinker", server.url,
                                   "--thinker-model", "no-such-model", "--cache", "none"])
        assert done.exit_code == 2
        lines = [line for line in done.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "HTTP 404" in done.output and "--thinker-model" in done.output
        assert len(server.requests) == 1  # the preflight only: no query was sent
        langchain_o1 = pytest.importorskip("langchain_o1")
        embeddings = langchain_o1.O1Embeddings(thinker=server.url, thinker_model="no-such-model", cache="none")
        with pytest.raises(ThinkerUnavailableError, match="HTTP 404"):
            embeddings.embed_documents(["Mercury is a metal."])  # the embedder is built and checked on first use
        with pytest.raises(ThinkerUnavailableError, match="HTTP 404"):
            embeddings.embed_query(QUERY)  # and never falls back afterwards


# -- eval: no misleading rows ----------------------------------------------------------------------
@pytest.mark.slow
def test_eval_marks_a_thinking_system_failed_when_every_query_fell_back(encoder, tmp_path, sample_corpus, caplog):
    from o1_retriever.evaluation import load_beir
    from o1_retriever.evaluation.calibration import calibrate_gate
    from o1_retriever.evaluation.report import retrieval_table, write_retrieval_report
    from o1_retriever.evaluation.retrieval import EvaluationError, evaluate_retrieval, parse_systems

    data = load_beir(_tiny_beir(tmp_path / "beir", sample_corpus))
    with OpenAIStub(fail_always=True) as server:  # answers, then fails every query: not a refusal
        embedder = ThinkingEmbedder(OpenAIThinker(server.url, "stub", retries=0), encoder, cache=None)
        with caplog.at_level(logging.WARNING):
            results = evaluate_retrieval(
                data, parse_systems("dense,thinking,auto,bm25,bm25+thinking,hybrid,hybrid+thinking"), embedder=embedder, db=tmp_path / "db", show_progress=False
            )
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) < len(data.queries) * 2  # the first failure and a summary, not one per query and system
        assert any("thinking failed for 4 of 4 queries" in r.getMessage() for r in warnings)
        thinking = results.system("thinking[o1+query]")
        assert thinking.failed and "HTTP 503" in thinking.failed
        assert results.system("dense").failed is None
        for name in ("bm25+thinking", "hybrid+thinking"):  # the keyword systems' thinking is marked the same way
            keyword = next(s for s in results.systems if s.name.startswith(name))
            assert keyword.failed and "HTTP 503" in keyword.failed, name
        assert results.system("bm25").failed is None and results.system("hybrid").failed is None
        saved = results.to_dict()
        assert saved["systems"]["thinking[o1+query]"] == {"failed": thinking.failed, "thought_share": 0.0, "fallbacks": 4}
        assert "thinking[o1+query]" not in saved["comparisons"] and "dense" in saved["systems"]
        table = retrieval_table(results)
        row = next(line for line in table.splitlines() if line.startswith("| thinking[o1+query] |"))
        assert "failed: thinking failed for every query" in row and "+0.0" not in row and "0.6" not in row
        paths = write_retrieval_report(results, tmp_path / "out")
        assert "failed" in json.loads(paths["json"].read_text())["systems"]["thinking[o1+query]"]
        with pytest.raises(EvaluationError, match=r"cannot calibrate: thinking\[o1\+query\] failed"):
            calibrate_gate(data, embedder=embedder, db=tmp_path / "db", show_progress=False)


# -- llama.cpp: a GGUF without a chat template -----------------------------------------------------
@pytest.fixture(scope="module")
def base_gguf(tmp_path_factory) -> Path:
    """The SmolLM2 GGUF with its chat template removed: to llama.cpp, a base model."""
    pytest.importorskip("llama_cpp")
    import gguf
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata

    from o1_retriever.models import smollm2_gguf_path

    source = gguf.GGUFReader(smollm2_gguf_path())
    assert source.get_field(gguf.Keys.Tokenizer.CHAT_TEMPLATE) is not None
    path = tmp_path_factory.mktemp("base-gguf") / "smollm2-base.gguf"
    arch = source.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    writer = gguf.GGUFWriter(path, arch=arch, endianess=source.endianess)
    copy_with_new_metadata(source, writer, {}, [gguf.Keys.Tokenizer.CHAT_TEMPLATE])
    assert gguf.GGUFReader(path).get_field(gguf.Keys.Tokenizer.CHAT_TEMPLATE) is None
    return path


@pytest.mark.slow
def test_a_gguf_without_chat_template_is_refused_at_once_with_a_chat_prompt(base_gguf, encoder):
    from o1_retriever.thinkers.llamacpp import LlamaCppThinker

    chat = LlamaCppThinker(str(base_gguf), prompt=PASSAGE_PROMPT, n_threads=1)
    embedder = ThinkingEmbedder(chat, encoder, thoughts=1, sampling=SHORT, cache=None)
    with pytest.raises(ThinkerUnavailableError, match="llamacpp:smollm2-base.gguf has no chat template.*--prompt passage-raw"):
        embedder.embed_queries([QUERY, "Why is the sky blue?"])
    assert chat._batched is None  # refused before any decoding context was made


@pytest.mark.slow
def test_a_gguf_without_chat_template_thinks_with_the_completion_prompt_chosen_for_it(base_gguf, encoder, caplog, tmp_path):
    from o1_retriever.thinkers.llamacpp import LlamaCppThinker

    with caplog.at_level(logging.WARNING):
        auto = LlamaCppThinker(str(base_gguf), n_threads=1)
        LlamaCppThinker(str(base_gguf), n_threads=1)
    assert auto.prompt is PASSAGE_RAW_PROMPT
    assert caplog.text.count("completion prompt 'passage-raw'") == 1  # logged once
    embedder = ThinkingEmbedder(auto, encoder, thoughts=2, sampling=SHORT, cache=tmp_path / "thoughts.sqlite")
    result = embedder.embed_query(QUERY, return_thoughts=True)
    assert result.thinking and len(result.thoughts) == 2 and all(t.strip() for t in result.thoughts)
    assert not any("\n\n" in t or "Query:" in t for t in result.thoughts)  # cut at the prompt's stops
    # the automatic choice is part of the thought cache key: it never serves a chat prompt's thoughts
    chat = ThinkingEmbedder(LlamaCppThinker(str(base_gguf), prompt=PASSAGE_PROMPT, n_threads=1), encoder, thoughts=2, sampling=SHORT)
    assert embedder._key(QUERY, 2) != chat._key(QUERY, 2)


@pytest.mark.slow
def test_eval_refuses_a_chat_prompt_once_and_thinks_with_the_completion_prompt(base_gguf, tmp_path, model_home, sample_corpus):
    """The issue's run: `eval --systems dense,thinking` with a base GGUF gives one clear refusal
    with a chat prompt (before the corpus is embedded), and real thoughts with none named."""
    from o1_retriever.cli import app

    data = _tiny_beir(tmp_path / "beir", sample_corpus)
    common = ["eval", str(data), "--systems", "dense,thinking", "--thinker", f"llamacpp:{base_gguf}", "--thinker-threads", "1",
              "--thoughts", "1", "--max-new-tokens", "16", "--cache", "none", "--db", str(tmp_path / "db")]
    refused = runner.invoke(app, [*common, "--prompt", "passage", "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 2
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 2 and "no chat template" in lines[1] and "--prompt passage-raw" in lines[1], refused.output  # the dataset line, then one error
    assert not (tmp_path / "db").exists() and not (tmp_path / "refused").exists()  # nothing embedded, nothing written

    thought = runner.invoke(app, [*common, "--out", str(tmp_path / "out")])
    assert thought.exit_code == 0, thought.output
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["settings"]["prompt"] == "passage-raw"
    thinking = saved["systems"]["thinking[o1+query]"]
    assert thinking["thought_share"] == 1.0 and thinking["fallbacks"] == 0 and "failed" not in thinking


@pytest.mark.slow
def test_synthesize_refuses_a_generator_that_cannot_write_before_any_work(base_gguf, tmp_path, model_home, sample_corpus):
    """Thought synthesis's chat prompt on a base GGUF: one clear refusal before mining negatives or
    loading the committee, and no output file."""
    from o1_retriever.cli import app

    data = _tiny_beir(tmp_path / "beir", sample_corpus)
    out = tmp_path / "thoughts.jsonl"
    refused = runner.invoke(app, ["synthesize", str(data), "--split", "test", "--out", str(out), "--generator", f"llamacpp:{base_gguf}",
                                  "--candidates", "1", "--max-new-tokens", "8", "--negatives", "1",
                                  # an encoder that cannot load: were negatives mined first, its error would come instead
                                  "--mine-encoder", str(tmp_path / "no-such-encoder")])
    assert refused.exit_code == 2, refused.output
    assert "no chat template" in refused.output and "Traceback" not in refused.output
    assert not out.exists()
