"""Evaluation: BEIR loading, metrics, BM25, `o1-retriever eval` and `rag-eval` end to end on
real data (slices of ../shared/data written to a temporary folder), and the published SciFact
dense figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o1_retriever.errors import O1RetrieverError, SourceError
from tests.conftest import shared_dataset

runner = CliRunner()


def _beir(root: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]], split: str = "test") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels))
    return root


def hotpot_slice(dest: Path, questions: int, distractors: int = 30, seed: int = 0) -> Path:
    """A small BEIR folder from ../shared/data/hotpotqa: `questions` seeded questions, their gold
    paragraphs and `distractors` other paragraphs (in a temporary folder, never the repo)."""
    from o1_retriever.evaluation import write_slice

    return write_slice(shared_dataset("hotpotqa"), dest, queries=questions, distractors=distractors, seed=seed)


# -- loader ----------------------------------------------------------------------------------------
def test_loader_reads_splits_and_seeded_subsets(tmp_path):
    from o1_retriever.evaluation import load_beir

    root = _beir(tmp_path / "d", [{"_id": "d1", "title": "T", "text": "x"}],
                 [{"_id": f"q{i}", "text": f"question {i}", "metadata": {"answer": str(i)}} for i in range(10)] + [{"_id": "unjudged", "text": "no qrels"}],
                 [(f"q{i}", "d1", 1) for i in range(10)])
    data = load_beir(root)
    assert list(data.queries) == [f"q{i}" for i in range(10)]  # unjudged query left out, file order kept
    assert data.metadata["q3"] == {"answer": "3"}
    a, b, c = (load_beir(root, queries=4, seed=s) for s in (1, 1, 2))
    assert list(a.queries) == list(b.queries) and len(a.queries) == 4
    assert set(a.queries) != set(c.queries)
    assert set(a.qrels) == set(a.queries)


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda r: (r / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\n{not json\n'), r"queries.jsonl:2: not a JSON line"),
        (lambda r: (r / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\n\n{"_id": "q2"}\n'), r"queries.jsonl:3: expected an object"),
        (lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1 d2 1\n"), r"test.tsv:3: expected 3 tab-separated"),
        (lambda r: (r / "qrels" / "test.tsv").write_text("q1\td1\tyes\n"), r"test.tsv:1: score 'yes' is not a number"),
        (lambda r: (r / "qrels" / "test.tsv").write_text("q9\td1\t1\n"), r"not in queries.jsonl \(first: 'q9'\)"),
        (lambda r: (r / "corpus.jsonl").unlink(), r"missing corpus.jsonl"),
    ],
)
def test_loader_errors_name_file_and_line(tmp_path, break_it, message):
    from o1_retriever.evaluation import load_beir

    root = _beir(tmp_path / "d", [{"_id": "d1", "text": "x"}], [{"_id": "q1", "text": "ok"}], [("q1", "d1", 1)])
    break_it(root)
    with pytest.raises(SourceError, match=message):
        load_beir(root)


def test_loader_names_available_splits(tmp_path):
    from o1_retriever.evaluation import load_beir

    root = _beir(tmp_path / "d", [{"_id": "d1", "text": "x"}], [{"_id": "q1", "text": "ok"}], [("q1", "d1", 1)], split="train")
    with pytest.raises(SourceError, match="no such split 'test'; available: train"):
        load_beir(root, "test")


# -- metrics -----------------------------------------------------------------------------------------
def test_metrics_match_a_hand_computed_example():
    from o1_retriever.evaluation import evaluate_run

    qrels = {"q1": {"d1": 1, "d2": 1}, "q2": {"d3": 2}, "q3": {"d9": 1}}
    run = {"q1": {"d1": 0.9, "d5": 0.8, "d2": 0.7}, "q2": {"d4": 0.5, "d3": 0.4}}  # q3 retrieves nothing
    means, per_query = evaluate_run(qrels, run)
    # q1: gains at ranks 1 and 3; ideal at ranks 1 and 2
    ndcg_q1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg_q2 = (2 / math.log2(3)) / 2  # grade 2 at rank 2, linear gain (trec_eval)
    assert per_query["q1"]["nDCG@10"] == pytest.approx(ndcg_q1)
    assert per_query["q2"]["nDCG@10"] == pytest.approx(ndcg_q2)
    assert per_query["q1"]["MRR@10"] == 1.0 and per_query["q2"]["MRR@10"] == 0.5
    assert per_query["q1"]["Recall@100"] == 1.0 and per_query["q3"] == {"nDCG@10": 0.0, "Recall@100": 0.0, "MRR@10": 0.0}
    assert means["nDCG@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 3)  # the empty query counts as 0
    assert means["MRR@10"] == pytest.approx(0.5)


def test_bm25_ranks_by_term_overlap():
    from o1_retriever.evaluation.bm25 import BM25

    bm25 = BM25(["cat", "dog", "both"], ["the cat sat on the mat", "dogs bark at night", "a cat chased the dogs"])
    hits = bm25.search(["cat mat", "unknownword"], k=3)
    assert list(hits[0])[0] == "cat" and set(hits[0]) == {"cat", "both"}
    assert hits[1] == {}


def test_unknown_system_is_a_clear_error():
    from o1_retriever.evaluation.retrieval import parse_systems

    assert [s.name for s in parse_systems("bm25,dense,hyde,thinking", "o1,o1+query")] == ["bm25", "dense", "hyde", "thinking[o1]", "thinking[o1+query]"]
    with pytest.raises(O1RetrieverError, match="unknown system 'splade'"):
        parse_systems("dense,splade")
    with pytest.raises(O1RetrieverError, match="unknown aggregation 'max'"):
        parse_systems("thinking", "max")


def test_eval_cli_bad_folder_is_one_line(tmp_path, model_home):
    from o1_retriever.cli import app

    result = runner.invoke(app, ["eval", str(tmp_path), "--systems", "bm25"])
    assert result.exit_code == 2
    assert "missing corpus.jsonl" in result.output and "Traceback" not in result.output


# -- end to end ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_eval_command_end_to_end(tmp_path, model_home):
    """All four systems on 3 HotpotQA questions (1 thought of 16 tokens): table, results.json, plot."""
    from o1_retriever.cli import app

    data = hotpot_slice(tmp_path / "hotpot", questions=3)
    out = tmp_path / "out"
    args = ["eval", str(data), "--systems", "bm25,dense,hyde,thinking", "--aggregations", "o1,o1+query",
            "--thoughts", "1", "--max-new-tokens", "16", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = result.stdout
    for name in ("| bm25 |", "| dense |", "| hyde |", "| thinking[o1] |", "| thinking[o1+query] |"):
        assert name in table
    saved = json.loads((out / "results.json").read_text())
    assert saved["queries"] == 3 and saved["split"] == "test"
    systems = saved["systems"]
    assert set(systems) == {"bm25", "dense", "hyde", "thinking[o1]", "thinking[o1+query]"}
    for name, s in systems.items():
        assert set(s["per_query"]) == set(json.loads(l)["_id"] for l in (data / "queries.jsonl").read_text().splitlines())
        mean = sum(q["nDCG@10"] for q in s["per_query"].values()) / 3
        assert s["metrics"]["nDCG@10"] == pytest.approx(mean)
        assert 0.0 <= s["metrics"]["Recall@100"] <= 1.0 and s["latency_ms"] > 0
    assert systems["dense"]["metrics"]["Recall@100"] == 1.0  # 36 documents: depth 100 sees them all
    assert systems["thinking[o1]"]["thoughts_per_query"] == 1 and systems["dense"]["thoughts_per_query"] == 0
    assert systems["hyde"]["generated_per_query"] == 1  # generated once in this run, shared by all thinking systems
    assert systems["thinking[o1]"]["fallbacks"] == 0
    assert (out / "ndcg_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| system | nDCG@10 |" in (out / "results.md").read_text()

    # a rerun reuses the document index and the thoughts: nothing is embedded or generated again
    again = runner.invoke(app, args[:-1] + [str(tmp_path / "out2")])
    assert again.exit_code == 0, again.output
    rerun = json.loads((tmp_path / "out2" / "results.json").read_text())["systems"]
    assert rerun["hyde"]["generated_per_query"] == 0
    for name in systems:
        assert rerun[name]["metrics"] == systems[name]["metrics"]  # same seed, same figures


@pytest.mark.slow
def test_rag_eval_counts_nans_and_writes_jsonl(tmp_path, model_home):
    """2 HotpotQA questions: SmolLM2 reads 2 passages; SmolLM2 also judges with replies cut at 8
    tokens, so RAGAS cannot parse its faithfulness statements: those scores must be NaN and
    counted, never dropped."""
    from o1_retriever.cli import app

    data = hotpot_slice(tmp_path / "hotpot", questions=2, distractors=20, seed=1)
    out = tmp_path / "rag"
    result = runner.invoke(app, ["rag-eval", str(data), "--queries", "2", "--k", "2", "--thoughts", "1", "--max-new-tokens", "16",
                                 "--answer-tokens", "12", "--judge", "smollm2", "--judge-tokens", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(l) for l in (out / "answers.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["variant"] for r in rows} == {"thinking", "no thinking"}
    gold = {json.loads(l)["_id"]: json.loads(l)["metadata"]["answer"] for l in (data / "queries.jsonl").read_text().splitlines()}
    for r in rows:
        assert r["gold_answer"] == gold[r["id"]] and len(r["contexts"]) == 2 and len(r["context_ids"]) == 2
        assert isinstance(r["answer"], str)
        assert (r["thoughts"] != []) == (r["variant"] == "thinking")
        # the id-based context recall is computable by hand
        recall = len(set(r["context_ids"]) & set(r["gold_ids"])) / len(r["gold_ids"])
        assert r["scores"]["id_based_context_recall"] == pytest.approx(recall)
        assert r["scores"]["exact_match"] == float(r["answer"] == r["gold_answer"])
    summary = json.loads((out / "rag_results.json").read_text())
    for variant in ("thinking", "no thinking"):
        nans = summary["nans"][variant]
        for metric, count in nans.items():
            assert count == sum(r["scores"][metric] is None for r in rows if r["variant"] == variant)
        assert nans["id_based_context_recall"] == 0
        assert summary["means"][variant]["id_based_context_recall"] == pytest.approx(
            sum(r["scores"]["id_based_context_recall"] for r in rows if r["variant"] == variant) / 2)
    assert sum(summary["nans"][v]["faithfulness"] for v in summary["nans"]) == 4  # 8-token replies are never valid RAGAS JSON
    assert summary["means"]["thinking"]["faithfulness"] is None  # all NaN: no mean, not 0
    assert "NaN scores" in result.stdout and "2 NaN" in result.stdout
    assert "Thinking changed the answer" in result.stdout
    assert (out / "ragas.png").read_bytes()[:4] == b"\x89PNG" and (out / "changed.json").exists()


@pytest.mark.slow
def test_scifact_dense_reproduces_published_ndcg(model_home):
    """dense all-MiniLM-L6-v2 on SciFact test (300 queries, title + " " + text): nDCG@10 0.645."""
    from o1_retriever import EmbedderConfig
    from o1_retriever.evaluation import load_beir
    from o1_retriever.evaluation.retrieval import DocumentStore, evaluate_retrieval, parse_systems

    data = load_beir(shared_dataset("scifact"), "test")
    assert len(data.queries) == 300
    results = evaluate_retrieval(data, parse_systems("dense,bm25"), EmbedderConfig(thinker="none", cache="none"), show_progress=False)
    dense, bm25 = results.systems
    assert round(dense.metrics["nDCG@10"], 3) == 0.645
    # bm25s (Lucene BM25, English stop words) lands next to BEIR's published BM25 figure, 0.665
    assert bm25.metrics["nDCG@10"] == pytest.approx(0.665, abs=0.01)
    # the document embeddings are stored once per (dataset, encoder) and reused
    from o1_retriever import ThinkingEmbedder

    store = DocumentStore(data, ThinkingEmbedder.from_config(EmbedderConfig(thinker="none", cache="none")), show_progress=False)
    assert store.stats.written == 0 and store.stats.unchanged == 5183


@pytest.mark.slow
def test_eval_with_a_unified_model(tmp_path, model_home):
    """--unified adds `unified` (thinks and embeds with one tiny LM built here) and `unified-dense`,
    over its own document index (its encoder differs from MiniLM's)."""
    from o1_retriever.cli import app
    from tests.test_unified import _tiny_llama

    model = _tiny_llama(tmp_path / "unified", model_home, with_tokens=True)
    data = hotpot_slice(tmp_path / "hotpot", questions=2, distractors=10)
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(data), "--systems", "bm25", "--unified", str(model), "--thoughts", "1",
                                 "--max-new-tokens", "8", "--cache", "none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    systems = json.loads((out / "results.json").read_text())["systems"]
    assert list(systems) == ["bm25", "unified-dense", "unified"]
    assert systems["unified"]["thoughts_per_query"] == 1 and systems["unified"]["generated_per_query"] == 1
    assert systems["unified-dense"]["thoughts_per_query"] == 0
    assert "| unified |" in result.stdout


def test_rag_eval_needs_gold_answers(tmp_path, model_home):
    from o1_retriever.cli import app

    root = _beir(tmp_path / "d", [{"_id": "d1", "text": "x"}], [{"_id": "q1", "text": "a question", "metadata": {}}], [("q1", "d1", 1)])
    result = runner.invoke(app, ["rag-eval", str(root)])
    assert result.exit_code == 2
    assert "no gold answer in metadata.answer (first: 'q1')" in result.output and "Traceback" not in result.output


def test_reader_speaks_openai_chat_completions(monkeypatch):
    """Plumbing only: a real HTTP server on 127.0.0.1 with canned replies (tests/openai_server.py)
    checks what the endpoint reader sends, that it cleans the reply, and that a failing server
    is one clear ReaderError."""
    from o1_retriever.evaluation.rag import Reader, ReaderError
    from tests.openai_server import OpenAIStub

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIStub() as server:
        reader = Reader(server.url, model_name="reader-7b", max_new_tokens=20)
        answers = reader.answer(["Who wrote Macbeth?", "Is water wet?"], [["Macbeth is a play by Shakespeare."], ["p1", "p2"]])
        assert len(answers) == 2 and all(a.startswith("thought 0 about") for a in answers)
        _, headers, body = server.requests[0]
        assert body["model"] == "reader-7b" and body["max_tokens"] == 20 and body["temperature"] == 0
        assert headers["Authorization"] == "Bearer sk-test"
        user = body["messages"][-1]["content"]
        assert "[1] Macbeth is a play by Shakespeare." in user and user.rstrip().endswith("Question: Who wrote Macbeth?\nAnswer:")
    with OpenAIStub(fail_always=True) as server:
        with pytest.raises(ReaderError, match="chat completion failed"):
            Reader(server.url, model_name="m").answer(["q"], [["p"]])
    with pytest.raises(ReaderError, match="needs a model name"):
        Reader("http://127.0.0.1:9/v1")


def test_clean_answer():
    from o1_retriever.evaluation.rag import clean_answer

    assert clean_answer("Answer: Paris.\nBecause it is the capital") == "Paris"
    assert clean_answer('\n  "Rush"  ') == "Rush"
    assert clean_answer("") == ""


@pytest.mark.slow
def test_eval_auto_system_reports_share_latency_and_comparisons(tmp_path, model_home):
    """thinking[auto] on 3 HotpotQA questions: with a gate that always thinks it equals
    thinking[o1+query] (and counts generation for every query); with one that never thinks it
    equals dense; results.json carries thought_share, p95 latency and paired comparisons."""
    from o1_retriever.cli import app
    from o1_retriever.gate import GateProfile

    data = hotpot_slice(tmp_path / "hotpot", questions=3)
    base = ["eval", str(data), "--systems", "dense,thinking,auto", "--thoughts", "1", "--max-new-tokens", "16", "--cache", str(tmp_path / "c.sqlite")]
    saved = {}
    for name, gate in (("always", GateProfile("top1", 2.0, "below")), ("never", GateProfile("top1", -2.0, "below"))):
        result = runner.invoke(app, [*base, "--gate-profile", str(gate.save(tmp_path / f"{name}.json")), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert "| thinking[auto] |" in result.stdout and "vs dense" in result.stdout
        saved[name] = json.loads((tmp_path / name / "results.json").read_text())
    always, never = saved["always"]["systems"], saved["never"]["systems"]
    assert always["thinking[auto]"]["metrics"] == always["thinking[o1+query]"]["metrics"]
    assert always["thinking[auto]"]["thought_share"] == 1.0 and always["thinking[o1+query]"]["thought_share"] == 1.0
    assert never["thinking[auto]"]["metrics"] == never["dense"]["metrics"]
    assert never["thinking[auto]"]["thought_share"] == 0.0 and never["dense"]["thought_share"] == 0.0
    assert never["thinking[auto]"]["thoughts_per_query"] == 0
    assert all(d["think"] for d in always["thinking[auto]"]["gate"].values())
    assert not any(d["think"] for d in never["thinking[auto]"]["gate"].values())
    for s in always.values():
        assert s["latency_p95_ms"] >= 0 and s["latency_ms"] > 0
    # the first run generated the thoughts (empty cache): both thinking systems pay for them,
    # and with a gate that always thinks auto costs what always-thinking costs
    assert always["thinking[o1+query]"]["latency_ms"] > 5 * always["dense"]["latency_ms"]
    assert always["thinking[auto]"]["latency_ms"] > 0.5 * always["thinking[o1+query]"]["latency_ms"]
    # the second run read them from the cache: auto that never thinks pays no generation
    assert never["thinking[auto]"]["latency_ms"] < 0.5 * always["thinking[auto]"]["latency_ms"]
    comparisons = saved["always"]["comparisons"]
    assert set(comparisons["thinking[auto]"]) == {"dense", "thinking[o1+query]"}
    assert comparisons["thinking[auto]"]["thinking[o1+query]"]["mean"] == 0.0
    assert saved["never"]["settings"]["gate"]["threshold"] == -2.0


@pytest.mark.slow
def test_calibrate_and_frontier_commands(tmp_path, model_home):
    """calibrate writes a profile fitted on the given split (the same one twice: deterministic),
    and frontier writes a table, results and a plot with an always, an auto, a bm25+thinking and
    a hybrid+thinking point per setting, dense, BM25 and hybrid as references."""
    from o1_retriever.cli import app
    from o1_retriever.gate import GateProfile

    data = hotpot_slice(tmp_path / "hotpot", questions=12, distractors=20)
    common = ["--thoughts", "1", "--max-new-tokens", "8", "--cache", str(tmp_path / "c.sqlite")]
    for name in ("a", "b"):
        result = runner.invoke(app, ["calibrate", str(data), "--split", "test", "--budget", "0.5", "--out", str(tmp_path / f"{name}.json"), *common])
        assert result.exit_code == 0, result.output
    profile = GateProfile.load(tmp_path / "a.json")
    assert profile == GateProfile.load(tmp_path / "b.json")
    assert profile.info["calibrated_on"] == {"dataset": "hotpot", "split": "test", "queries": 12}
    assert profile.info["measured"]["thought_share"] <= 0.5 and profile.info["objective"] == "coverage"
    bad = runner.invoke(app, ["calibrate", str(data), "--split", "test", "--objective", "vibes", "--out", str(tmp_path / "x.json"), *common])
    assert bad.exit_code == 2 and "objective" in bad.output and not (tmp_path / "x.json").exists()

    out = tmp_path / "frontier"
    result = runner.invoke(app, ["frontier", str(data), "--split", "test", "--thoughts-grid", "1", "--tokens-grid", "4,8", "--latency-queries", "2",
                                 "--gate-profile", str(tmp_path / "a.json"), "--out", str(out), *common])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "frontier.json").read_text())
    assert [p["name"] for p in saved["points"]] == [
        f"{system}k=1, {t} tokens" for t in (4, 8) for system in ("", "auto, ", "bm25+thinking, ", "hybrid+thinking, ")
    ]
    assert [p["mode"] for p in saved["points"][:4]] == ["dense", "dense", "keyword", "hybrid"]
    assert saved["hybrid"]["ndcg"] > 0 and "| hybrid+thinking, k=1, 8 tokens |" in (out / "frontier.md").read_text()
    assert saved["queries"] == 12 and saved["latency_queries"] == 2
    for p in saved["points"]:
        assert 0 <= p["ndcg"] <= 1 and p["latency_ms"] > 0 and set(p["vs_dense"]) >= {"mean", "low", "high"}
        assert p["thought_share"] == (1.0 if not p["auto"] else p["thought_share"])
    assert saved["dense"]["ndcg"] > 0 and saved["bm25"]["ndcg"] > 0
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| auto, k=1, 8 tokens |" in (out / "frontier.md").read_text()
    bad = runner.invoke(app, ["frontier", str(data), "--thoughts-grid", "0,x", "--out", str(out)])
    assert bad.exit_code == 2 and "--thoughts-grid" in bad.output
