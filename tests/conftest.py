"""Shared fixtures: the real offline models (loaded once per session), a temporary
O1_RETRIEVER_HOME, and the location of ../shared/data (skipped on a user's clone, required in CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("O1_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of a BEIR folder in ../shared/data; skip without it, but fail under CI=true."""
    path = SHARED_DATA / name
    if not (path / "corpus.jsonl").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the shared evaluation data is missing: {path}")
        pytest.skip(f"needs the shared evaluation data at {path} (not part of a user's clone)")
    return path


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """O1_RETRIEVER_HOME for the test session. The converted SmolLM2 folder is reused from the
    user's real home when present (conversion takes ~20 s), else converted once here."""
    home = tmp_path_factory.mktemp("o1home")
    real = Path(os.environ.get("O1_RETRIEVER_HOME", Path.home() / ".o1-retriever"))
    (real / "models").mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(real / "models", target_is_directory=True)
    os.environ["O1_RETRIEVER_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def thinker(model_home):
    from o1_retriever.thinkers.transformers import TransformersThinker

    return TransformersThinker("smollm2")


@pytest.fixture(scope="session")
def encoder(model_home):
    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder("minilm")


@pytest.fixture()
def embedder(thinker, encoder, tmp_path):
    """The offline default embedder with short thoughts (fast) and a fresh cache."""
    from o1_retriever import SamplingConfig, ThinkingEmbedder

    return ThinkingEmbedder(thinker, encoder, thoughts=2, sampling=SamplingConfig(max_new_tokens=16), cache=tmp_path / "thoughts.sqlite")


@pytest.fixture(scope="session")
def sample_corpus() -> Path:
    from importlib.resources import files

    return Path(str(files("o1_retriever") / "data" / "sample_corpus"))
