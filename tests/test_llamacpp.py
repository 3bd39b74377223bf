"""The llama.cpp thinker on the real SmolLM2 GGUF (optional extra: skipped without llama-cpp-python)."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from o1_retriever import EmbedderConfig, ModelLoadError, SamplingConfig, ThinkingEmbedder  # noqa: E402
from o1_retriever.prompts import ThoughtPrompt  # noqa: E402
from o1_retriever.thinkers.llamacpp import LlamaCppThinker, load_llama  # noqa: E402

pytestmark = pytest.mark.slow

SHORT = SamplingConfig(max_new_tokens=8)
QUERIES = ["Which metal is liquid at room temperature?", "Why is the sky blue?"]


@pytest.fixture(scope="module")
def llama(model_home):
    return LlamaCppThinker("smollm2", n_threads=1)


def test_k_thoughts_per_query_seeded_and_independent_of_batch(llama):
    both = llama.think(QUERIES, 2, SHORT)
    assert [len(t) for t in both] == [2, 2]
    assert all(isinstance(t, str) and t.strip() for group in both for t in group)
    assert not any("<|im_end|>" in t or "<|im_start|>" in t for group in both for t in group)
    # same seed, same thoughts; a query's thoughts do not depend on its neighbours
    assert llama.think(QUERIES[1:], 2, SHORT) == both[1:]
    # the k samples are different draws, and another seed gives other thoughts
    assert both[0][0] != both[0][1]
    assert llama.think(QUERIES[:1], 2, SamplingConfig(max_new_tokens=8, seed=7)) != both[:1]


def test_shared_prefill_decodes_the_k_samples_together(llama):
    """With sharing, the k samples continue from one evaluation of the prompt (their first
    tokens are drawn from the same logits); without, each sample evaluates the prompt itself.
    llama.cpp's kernels round differently for other batch shapes, so sampled thoughts may
    differ between the two; greedy ones agree, and each mode is deterministic."""
    greedy = SamplingConfig(max_new_tokens=8, temperature=0.0)
    shared, shared_greedy = llama.think(QUERIES[:1], 3, SHORT), llama.think(QUERIES[:1], 3, greedy)
    llama.share_prefill = False
    try:
        fresh, fresh_greedy = llama.think(QUERIES[:1], 3, SHORT), llama.think(QUERIES[:1], 3, greedy)
        assert llama.think(QUERIES[:1], 3, SHORT) == fresh
    finally:
        llama.share_prefill = True
    assert [len(g) for g in shared + fresh] == [3, 3]
    assert all(t.strip() for g in shared + fresh for t in g)
    assert shared_greedy == fresh_greedy
    assert len(set(shared[0])) > 1  # k different draws, not one sample copied


def test_more_samples_than_the_context_was_built_for(llama):
    """The multi-sequence context grows when a larger k arrives."""
    few = llama.think(QUERIES[:1], 2, SHORT)
    many = llama.think(QUERIES[:1], 5, SHORT)
    assert [len(few[0]), len(many[0])] == [2, 5]
    assert llama.think(QUERIES[:1], 2, SHORT) == few


def test_prompt_and_samples_must_fit_the_context(llama):
    from o1_retriever import ThinkerError

    with pytest.raises(ThinkerError, match="n_ctx"):
        llama.think(QUERIES[:1], 64, SamplingConfig(max_new_tokens=64))


def test_greedy_and_raw_prompt(llama):
    greedy = SamplingConfig(max_new_tokens=8, temperature=0.0)
    a = llama.think(QUERIES[:1], 2, greedy)
    assert a[0][0] == a[0][1]  # no sampling: k identical thoughts
    raw = LlamaCppThinker("smollm2", prompt=ThoughtPrompt("raw", "Q: {query}\nA:", chat=False), n_threads=1)
    assert raw.llm is llama.llm  # one model load per process
    assert raw.identity == llama.identity and raw.prompt.key != llama.prompt.key
    out = raw.think(QUERIES[:1], 1, greedy)
    assert len(out) == 1 and out[0][0]


def test_long_query_is_cut_to_fit(llama, caplog):
    llama.max_query_tokens = 16
    try:
        out = llama.think(["bees " * 400], 1, SamplingConfig(max_new_tokens=4))
    finally:
        llama.max_query_tokens = 256
    assert len(out[0]) == 1
    assert "cut to 16" in caplog.text


def test_factory_builds_it_and_the_embedder_caches_its_thoughts(model_home, tmp_path):
    embedder = ThinkingEmbedder.from_config(
        EmbedderConfig(thinker="llamacpp:smollm2", thoughts=2, sampling=SHORT, cache=str(tmp_path / "t.sqlite"))
    )
    assert isinstance(embedder.thinker, LlamaCppThinker) and embedder.thinker.identity == "llamacpp:smollm2-gguf"
    first = embedder.embed_query(QUERIES[0], return_thoughts=True)
    assert len(first.thoughts) == 2 and first.thinking and not first.fallback
    assert embedder.cache.get_many([embedder._key(QUERIES[0], 2)])  # stored under the llama.cpp identity
    assert embedder.embed_query(QUERIES[0], return_thoughts=True).thoughts == first.thoughts


def test_bad_model_paths_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        LlamaCppThinker(str(tmp_path / "missing.gguf"))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelLoadError, match="GGUF"):
        load_llama(bogus)


def test_concurrent_callers_share_one_model_safely(llama):
    from concurrent.futures import ThreadPoolExecutor

    tiny = SamplingConfig(max_new_tokens=4)
    expected = [llama.think([q], 1, tiny) for q in QUERIES]
    other = LlamaCppThinker("smollm2", n_threads=1)  # a second thinker on the same loaded model
    assert other.llm is llama.llm
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: (llama if i % 2 else other).think([QUERIES[i % 2]], 1, tiny), range(4)))
    assert got == [expected[i % 2] for i in range(4)]


def test_synthesize_cli_with_the_llamacpp_generator(model_home, tmp_path):
    """`o1-retriever synthesize --generator llamacpp:smollm2`: the fast CPU generator writes the
    candidates, a committee (MiniLM + BM25) keeps one, rows are resumable."""
    import json

    from typer.testing import CliRunner

    from o1_retriever.cli import app

    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"query": "Mercury is liquid at room temperature.", "pos": ["Mercury is a metal that is liquid at standard conditions."], "neg": ["Bees dance."]},
        {"query": "Honey bees communicate by dancing.", "pos": ["The waggle dance tells hive mates where flowers are."], "neg": ["Iron rusts."]},
        {"query": "Statins lower LDL cholesterol.", "pos": ["Statins inhibit HMG-CoA reductase and reduce LDL."], "neg": ["The sky is blue."]},
    ]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "thoughts.jsonl"
    args = ["synthesize", str(pairs), "--out", str(out), "--generator", "llamacpp:smollm2", "--candidates", "2",
            "--shots", "1", "--max-new-tokens", "12", "--voters", "minilm,bm25"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["query"] for w in written] == [r["query"] for r in rows]
    for w in written:
        assert len(w["all_thought"]) == 2 and w["thought"] in w["all_thought"]
        assert len(w["votes"]) == 2 and "bm25" in w["votes"]  # one score list per voter
        assert all(len(scores) == 2 for scores in w["votes"].values())
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_the_prompt_template_is_evaluated_once_and_reused(llama):
    """The tokens every prompt shares (chat template, instruction) keep their KV cells from query
    to query; a query evaluates only its own tokens, and its thoughts do not depend on whether
    the template was evaluated just now or kept from earlier queries."""
    from llama_cpp._internals import LlamaContext

    fresh = LlamaCppThinker("smollm2", n_threads=1)
    prefix = fresh._template_prefix()
    tokens, _ = fresh._prompt_tokens(QUERIES[0])
    assert 20 < len(prefix) < len(tokens) and tokens[: len(prefix)] == prefix
    evaluated = []
    original = LlamaContext.decode
    LlamaContext.decode = lambda ctx, batch: evaluated.append(batch.batch.n_tokens) or original(ctx, batch)
    try:
        cold = fresh.think(QUERIES[:1], 2, SHORT)  # template first, then the query's own tokens
        fresh.think(QUERIES[1:], 2, SHORT)
        evaluated.clear()
        warm = fresh.think(QUERIES[:1], 2, SHORT)
    finally:
        LlamaContext.decode = original
    assert warm == cold
    assert evaluated[0] == len(tokens) - len(prefix)  # the warm prefill skips the template
    assert max(evaluated[1:]) <= 2  # then one token per live sample per step


def test_an_amx_build_loads_its_weights_in_plain_cpu_buffers(llama):
    """llama.cpp's AMX kernels kill the process on the first evaluation (SIGSEGV, seen on a Xeon
    with AMX): on such a build the thinker loads with llama.cpp's extra buffer types off, and
    the wrapper it loads under is put back afterwards. On a build without AMX (the one
    .ci/run compiles) the weights keep llama.cpp's default layout; the thoughts above ran either
    way, which is what the AMX case could not do before."""
    import llama_cpp.llama_cpp as raw

    from o1_retriever.thinkers import _llamacpp_private as private

    assert llama.llm.model_params.use_extra_bufts is (not private.amx_build())
    assert raw.llama_model_default_params().use_extra_bufts is True  # the library's default is back
    with private.plain_cpu_weights():
        assert raw.llama_model_default_params().use_extra_bufts is False
    assert raw.llama_model_default_params().use_extra_bufts is True
