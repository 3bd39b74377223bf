"""Adaptive thinking (issue 12): the gate's decisions on constructed score distributions,
deterministic calibration, profiles on disk, and ``thinking="auto"`` through ChromaIndex and the
CLI with the real models."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from o1_retriever import EmbedderConfig, O1RetrieverError, ThinkingEmbedder
from o1_retriever.gate import DEFAULT_PROFILE, GateProfile, calibrate, signals

CONFIDENT = [0.82, 0.41, 0.40, 0.39, 0.38, 0.37, 0.36, 0.35, 0.34, 0.33]  # one clear winner
FLAT = [0.52, 0.51, 0.51, 0.50, 0.50, 0.50, 0.49, 0.49, 0.49, 0.48]  # cannot tell them apart
LOW = [0.21, 0.12, 0.11, 0.10, 0.10, 0.09, 0.09, 0.08, 0.08, 0.07]  # nothing is close


def test_signals_of_constructed_distributions():
    s = signals(CONFIDENT)
    assert s["top1"] == pytest.approx(0.82) and s["margin"] == pytest.approx(0.41)
    assert s["spread"] == pytest.approx(float(np.std(CONFIDENT)))
    assert s["lead"] == pytest.approx(0.82 - float(np.mean(CONFIDENT)))
    assert s["zlead"] == pytest.approx(s["lead"] / s["spread"])
    assert signals(FLAT)["margin"] == pytest.approx(0.01)
    assert signals(list(reversed(FLAT))) == signals(FLAT)  # order of the input does not matter
    assert signals(CONFIDENT + [0.0] * 5) == signals(CONFIDENT)  # only the top 10 are read
    assert signals([0.5])["margin"] == 0.0 and signals([0.5, 0.5])["zlead"] == 0.0
    assert all(math.isnan(v) for v in signals([]).values())


@pytest.mark.parametrize(
    "profile, confident, flat, low",
    [
        (GateProfile("margin", 0.05, "below"), False, True, False),
        (GateProfile("top1", 0.3, "below"), False, False, True),
        (GateProfile("spread", 0.02, "below"), False, True, False),
        (GateProfile("top1", 0.3, "above"), True, True, False),
    ],
)
def test_gate_decisions(profile, confident, flat, low):
    for scores, expected in ((CONFIDENT, confident), (FLAT, flat), (LOW, low)):
        decision = profile.decide(scores)
        assert decision.think is expected
        assert decision.signal == profile.signal and decision.value == pytest.approx(signals(scores)[profile.signal])
        assert decision.reason.endswith("uncertain, thinking" if expected else "confident, no thinking") and profile.signal in decision.reason
    empty = profile.decide([])  # an empty collection: nothing to think about
    assert empty.think is False and empty.value is None and "no hits" in empty.reason
    json.dumps(empty.to_dict(), allow_nan=False)  # valid JSON, no NaN


def test_bad_profiles_are_clear_errors(tmp_path):
    with pytest.raises(O1RetrieverError, match="unknown gate signal"):
        GateProfile("entropy", 0.1)
    with pytest.raises(O1RetrieverError, match="below or above"):
        GateProfile("margin", 0.1, "sideways")
    with pytest.raises(O1RetrieverError, match="no such gate profile"):
        GateProfile.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(O1RetrieverError, match="unreadable"):
        GateProfile.load(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"signal": "margin", "threshold": 0.1}))
    with pytest.raises(O1RetrieverError, match="version-1"):
        GateProfile.load(tmp_path / "old.json")


def test_profile_round_trip_and_default(tmp_path):
    profile = GateProfile("zlead", 2.5, "below", info={"budget": 0.5})
    loaded = GateProfile.load(profile.save(tmp_path / "gate.json"))
    assert loaded == profile and loaded.info == {"budget": 0.5}
    assert GateProfile.load() is DEFAULT_PROFILE and GateProfile.load("default") is DEFAULT_PROFILE
    assert DEFAULT_PROFILE.info["calibrated_on"]["split"] == "train"  # never fitted on a test split
    # fitted with the default thinking settings: changing them means calibrating the gate again
    config = EmbedderConfig()
    assert DEFAULT_PROFILE.info["thoughts"] == config.thoughts
    assert DEFAULT_PROFILE.info["sampling"] == config.sampling.as_dict()
    assert DEFAULT_PROFILE.info["aggregation"] == config.aggregation


def _synthetic(n: int = 200, seed: int = 0, signed: bool = False):
    """Queries whose margin decides what thinking does: for margins under 0.1 it changes
    nDCG@10 by +0.3 (or by +/-0.3 at random with ``signed``), above that by -0.1 (or not at
    all with ``signed``)."""
    rng = np.random.default_rng(seed)
    scores, dense, thinking = {}, {}, {}
    for i in range(n):
        margin = float(rng.uniform(0.0, 0.3))
        top = 0.6 + float(rng.uniform(-0.1, 0.1))
        scores[f"q{i}"] = [top, top - margin] + [top - margin - 0.01 * j for j in range(1, 9)]
        dense[f"q{i}"] = float(rng.uniform(0.2, 0.6))
        if signed:
            change = float(rng.choice([-0.3, 0.3])) if margin < 0.1 else 0.0
        else:
            change = 0.3 if margin < 0.1 else -0.1
        thinking[f"q{i}"] = dense[f"q{i}"] + change
    return scores, dense, thinking


def test_ndcg_calibration_finds_the_signal_keeps_the_budget_and_is_deterministic():
    scores, dense, thinking = _synthetic()
    fitted = calibrate(scores, dense, thinking, budget=0.5, objective="ndcg")
    p = fitted.profile
    assert p.signal == "margin" and p.side == "below" and p.threshold == pytest.approx(0.1, abs=0.01)
    decided = {q: p.decide(s).think for q, s in scores.items()}
    assert sum(decided.values()) / len(decided) == pytest.approx(fitted.thought_share) and fitted.thought_share <= 0.5
    auto = np.mean([thinking[q] if decided[q] else dense[q] for q in scores])
    assert fitted.ndcg_auto == pytest.approx(auto)
    assert fitted.ndcg_auto > max(fitted.ndcg_dense, fitted.ndcg_always)
    again = calibrate(dict(reversed(list(scores.items()))), dense, thinking, budget=0.5, objective="ndcg")
    assert again.profile == p and again.ndcg_auto == fitted.ndcg_auto  # the same profile whatever the order

    tight = calibrate(scores, dense, thinking, budget=0.1, objective="ndcg")
    assert tight.thought_share <= 0.1
    hurts = {q: v - 0.2 for q, v in dense.items()}
    assert calibrate(scores, dense, hurts, budget=0.5, objective="ndcg").thought_share == 0.0  # thinking never pays: never think
    with pytest.raises(O1RetrieverError, match="budget"):
        calibrate(scores, dense, thinking, budget=0)
    with pytest.raises(O1RetrieverError, match="objective"):
        calibrate(scores, dense, thinking, objective="vibes")


def test_coverage_calibration_sends_the_queries_thinking_changes():
    """Thinking changes only the low-margin queries, for better or worse: the coverage gate
    thinks on exactly those (all of the change, the fewest queries), whatever the signs."""
    scores, dense, thinking = _synthetic(signed=True)
    fitted = calibrate(scores, dense, thinking, budget=0.5)
    p = fitted.profile
    assert fitted.objective == "coverage" and fitted.coverage == 1.0
    assert p.signal == "margin" and p.side == "below"
    low = {q for q, s in scores.items() if s[0] - s[1] < 0.1}
    assert {q for q, s in scores.items() if p.decide(s).think} == low
    assert fitted.thought_share == pytest.approx(len(low) / len(scores))
    assert fitted.ndcg_auto == pytest.approx(fitted.ndcg_always)  # auto tracks always-thinking
    tight = calibrate(scores, dense, thinking, budget=0.1)
    assert tight.thought_share <= 0.1 and 0 < tight.coverage < 1
    again = calibrate(dict(reversed(list(scores.items()))), dense, thinking, budget=0.5)
    assert again.profile == p


# -- thinking="auto" through the index and the CLI (real models) --------------------------------------
@pytest.fixture()
def index(embedder, tmp_path, sample_corpus):
    from o1_retriever.index import ChromaIndex, read_source

    idx = ChromaIndex("gate-test", embedder, path=tmp_path / "db")
    idx.add(read_source(sample_corpus), show_progress=False)
    return idx


@pytest.mark.slow
def test_auto_search_thinks_only_where_the_gate_says(index):
    always_think = GateProfile("top1", 2.0, "below")  # cosine < 2: every query thinks
    never_think = GateProfile("top1", -2.0, "below")
    q = "Which metal is liquid at room temperature?"
    thought = index.search(q, k=3, thinking="auto", gate=always_think)
    assert thought.thinking and thought.thoughts and thought.gate.think
    assert [h.id for h in thought.hits] == [h.id for h in index.search(q, k=3, thinking=True).hits]
    plain = index.search(q, k=3, thinking="auto", gate=never_think)
    assert not plain.thinking and plain.thoughts == [] and plain.gate.think is False
    assert [h.id for h in plain.hits] == [h.id for h in index.search(q, k=3, thinking=False).hits]
    payload = plain.to_dict()
    assert payload["thinking"] is False and payload["gate"]["think"] is False and "reason" in payload["gate"]
    other = "How do bees tell each other where flowers are?"
    tops = [r.hits[0].score for r in index.search_many([q, other], k=1, thinking=False)]
    assert tops[0] != tops[1]
    between = GateProfile("top1", sum(tops) / 2, "below")  # only the query with the lower top-1 thinks
    mixed = index.search_many([q, other], k=2, thinking="auto", gate=between)
    assert [r.thinking for r in mixed] == [t < sum(tops) / 2 for t in tops]
    assert [bool(r.thoughts) for r in mixed] == [r.thinking for r in mixed]
    with pytest.raises(O1RetrieverError, match="thinking must be"):
        index.search(q, thinking="sometimes")
    no_thinker = type(index).from_collection(index.collection, ThinkingEmbedder(None, index.embedder.encoder))
    with pytest.raises(O1RetrieverError, match="needs a thinker"):
        no_thinker.search(q, thinking="auto")


@pytest.mark.slow
def test_search_cli_think_auto_reports_the_decision(index, tmp_path, model_home):
    profile = GateProfile("top1", 2.0, "below").save(tmp_path / "gate.json")
    base = [sys.executable, "-m", "o1_retriever.cli", "search", "How do bees tell each other where flowers are?", "--collection", "gate-test",
            "--db", str(tmp_path / "db"), "--k", "2", "--json", "--thoughts", "2", "--max-new-tokens", "16", "--cache", str(tmp_path / "c.sqlite")]
    run = subprocess.run([*base, "--think", "auto", "--gate-profile", str(profile)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert payload["thinking"] is True and payload["gate"]["think"] is True and len(payload["thoughts"]) == 2
    never = GateProfile("top1", -2.0, "below").save(tmp_path / "never.json")
    run = subprocess.run([*base, "--think", "auto", "--gate-profile", str(never)], capture_output=True, text=True, timeout=600)
    payload = json.loads(run.stdout)
    assert payload["thinking"] is False and payload["gate"]["think"] is False and payload["thoughts"] == []
    run = subprocess.run([*base, "--think", "maybe"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and "--think must be one of" in run.stderr
    run = subprocess.run([*base, "--think", "auto", "--gate-profile", str(tmp_path / "nope.json")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and "no such gate profile" in run.stderr


@pytest.mark.slow
def test_auto_encodes_the_bare_query_once(index):
    """The plain vector of the first search is the bare query's part of o1+query: not encoded twice."""
    encoded = []
    encoder = index.embedder.encoder
    original = encoder.encode_queries
    encoder.encode_queries = lambda texts: encoded.extend(texts) or original(texts)
    try:
        q = "Why is the sky blue during the day?"
        result = index.search(q, k=2, thinking="auto", gate=GateProfile("top1", 2.0, "below"))
    finally:
        del encoder.encode_queries
    assert result.thinking and encoded.count(q) == 1
    assert sorted(encoded) == sorted([q] + [f"{q} {t}" for t in result.thoughts])


def test_a_profile_without_threshold_warns_that_it_is_not_the_built_in_one():
    """``GateProfile()`` keeps its 0.1 meaning (margin below 0.05) but says it is not the built-in
    profile, which ``GateProfile.load()`` returns, and names the built-in one's threshold (issue 18)."""
    from o1_retriever.gate import DEFAULT_PROFILE

    built_in = f"{DEFAULT_PROFILE.signal} {DEFAULT_PROFILE.threshold:.4f}"
    with pytest.deprecated_call(match=re.escape(f"not the built-in profile ({built_in}")):
        profile = GateProfile()
    assert profile == GateProfile("margin", 0.05, "below") and type(profile.threshold) is float
    assert profile != DEFAULT_PROFILE and GateProfile.load() is DEFAULT_PROFILE
    assert DEFAULT_PROFILE.threshold != 0.05
