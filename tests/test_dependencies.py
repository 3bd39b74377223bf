"""Dependencies whose private parts o1-retriever uses have an upper bound in pyproject.toml, and
the installed versions are inside the declared ranges: a release that may break those private
parts fails here, with the package, its version and the range, instead of deep inside a run."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

#: package -> where its private parts are used (the reason for its upper bound)
PRIVATE_USE = {
    "accelerate": "training/precision.py: AcceleratorState._reset_state",
    "chromadb": "index/client.py: Chroma's client internals (Collection._client in client_of)",
    "llama-cpp-python": "thinkers/_llamacpp_private.py: llama_cpp._internals, Llama._model",
    "langchain-chroma": "integrations/langchain/langchain_o1/retrievers.py: Chroma._collection (no public accessor)",
}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {Requirement(r).name.lower(): Requirement(r) for r in requirements if Requirement(r).name.lower() in PRIVATE_USE}


def installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("name", sorted(PRIVATE_USE))
def test_a_dependency_used_privately_has_an_upper_bound(name):
    requirement = declared().get(name)
    assert requirement is not None, f"{name} is not declared in pyproject.toml"
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), (
        f"{name} needs an upper bound in pyproject.toml ({PRIVATE_USE[name]} uses its private parts), got {requirement}"
    )


@pytest.mark.parametrize("name", sorted(PRIVATE_USE))
def test_the_installed_version_is_inside_the_declared_range(name):
    version = installed(name)
    if version is None:
        pytest.skip(f"{name} is not installed (an optional extra)")
    requirement = declared()[name]
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{name} {version} is installed, outside the range o1-retriever declares ({requirement.specifier}): "
        f"{PRIVATE_USE[name]} may not work with it; install '{requirement}'"
    )


def test_precision_module_states_the_declared_accelerate_range():
    from o1_retriever.training.precision import ACCELERATE_RANGE

    assert str(declared()["accelerate"].specifier) == str(Requirement(f"accelerate{ACCELERATE_RANGE}").specifier)


def test_an_accelerate_without_the_private_reset_is_refused_with_a_clear_error(monkeypatch):
    from accelerate.state import AcceleratorState

    from o1_retriever.errors import DependencyError
    from o1_retriever.training.precision import fresh_accelerator_state

    monkeypatch.delattr(AcceleratorState, "_reset_state")
    with pytest.raises(DependencyError, match=r"accelerate \S+ has no AcceleratorState/GradientState._reset_state.*install accelerate>=0.34,<2"):
        fresh_accelerator_state()


def test_ci_installs_llama_cpp_in_the_declared_range():
    ci = (PYPROJECT.parent / ".ci" / "run").read_text(encoding="utf-8")
    pins = re.findall(r'"(llama-cpp-python[^"]*)"', ci)
    assert pins and all(Requirement(p).specifier == declared()["llama-cpp-python"].specifier for p in pins), pins


def test_ci_builds_llama_cpp_without_amx_and_without_a_cached_wheel():
    """llama.cpp's AMX kernels segfault on AMX Xeons: CI compiles the portable build the FAQ
    gives (the module's arguments, one source), never a cached native wheel."""
    from o1_retriever.thinkers._llamacpp_private import NO_AMX_CMAKE_ARGS

    ci = (PYPROJECT.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert f'CMAKE_ARGS="{NO_AMX_CMAKE_ARGS}"' in ci and "--no-cache-dir" in ci
    faq = (PYPROJECT.parent / "docs" / "faq.md").read_text(encoding="utf-8")
    assert NO_AMX_CMAKE_ARGS in faq


def test_an_amx_build_that_cannot_turn_amx_off_is_refused_with_the_way_out(monkeypatch):
    """A stand-in llama_cpp (plumbing: no real one needed) whose model parameters have no
    ``use_extra_bufts``: loading under :func:`plain_cpu_weights` is refused with the rebuild
    command instead of a segmentation fault later."""
    from o1_retriever.errors import DependencyError
    from o1_retriever.thinkers._llamacpp_private import plain_cpu_weights

    _stand_in_llama_cpp(monkeypatch, None)
    raw = types.ModuleType("llama_cpp.llama_cpp")
    raw.llama_model_default_params = lambda: types.SimpleNamespace(n_gpu_layers=0)
    sys.modules["llama_cpp"].llama_cpp = raw
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_cpp", raw)
    with pytest.raises(DependencyError, match=r"Intel AMX.*llama-cpp-python \(0\.4\.0\) cannot turn them off.*CMAKE_ARGS=\"-DGGML_NATIVE=OFF"):
        with plain_cpu_weights():
            pass


def test_llama_cpp_private_module_states_the_declared_range():
    from o1_retriever.thinkers._llamacpp_private import LLAMA_CPP_RANGE

    assert str(declared()["llama-cpp-python"].specifier) == str(Requirement(f"llama-cpp-python{LLAMA_CPP_RANGE}").specifier)


def test_only_the_llama_cpp_private_module_reaches_into_llama_cpp():
    """llama-cpp-python's private parts are used in one module, the one that checks the version."""
    root = PYPROJECT.parent
    users = [
        str(path.relative_to(root))
        for folder in ("o1_retriever", "integrations", "benchmarks")
        for path in sorted((root / folder).rglob("*.py"))
        if re.search(r"_internals|\bllm\._model\b|\.llm\._model\b", path.read_text(encoding="utf-8"))
    ]
    assert users == ["o1_retriever/thinkers/_llamacpp_private.py"], users


def _stand_in_llama_cpp(monkeypatch, internals: types.ModuleType | None) -> None:
    """A llama_cpp 0.4.0 (a stand-in: the real one need not be installed), whose ``_internals``
    cannot be imported (``None``) or is ``internals``."""
    module = types.ModuleType("llama_cpp")
    module.__version__ = "0.4.0"
    module.Llama = object
    if internals is not None:
        module._internals = internals
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    if internals is None:  # not a package: importing llama_cpp._internals fails
        monkeypatch.delitem(sys.modules, "llama_cpp._internals", raising=False)
    else:
        monkeypatch.setitem(sys.modules, "llama_cpp._internals", internals)


def test_a_llama_cpp_without_its_internals_is_refused_with_a_clear_error(monkeypatch):
    from o1_retriever.errors import DependencyError
    from o1_retriever.thinkers._llamacpp_private import check_llama_cpp

    _stand_in_llama_cpp(monkeypatch, None)
    with pytest.raises(DependencyError, match=r"llama-cpp-python 0\.4\.0 has no llama_cpp\._internals, .*install llama-cpp-python>=0\.3,<0\.4"):
        check_llama_cpp()


def test_a_llama_cpp_lacking_one_private_method_is_refused_naming_it(monkeypatch):
    from o1_retriever.errors import DependencyError
    from o1_retriever.thinkers._llamacpp_private import _USED, check_llama_cpp

    internals = types.ModuleType("llama_cpp._internals")
    for name, methods in _USED.items():
        setattr(internals, name, type(name, (), {m: lambda self: None for m in methods if (name, m) != ("LlamaSampler", "add_dist")}))
    _stand_in_llama_cpp(monkeypatch, internals)
    with pytest.raises(DependencyError, match=r"has no llama_cpp\._internals\.LlamaSampler\.add_dist, .*install llama-cpp-python>=0\.3,<0\.4"):
        check_llama_cpp()
    internals.LlamaSampler.add_dist = lambda self, seed: None  # with every part there, it passes
    check_llama_cpp()


def test_the_llama_cpp_thinker_refuses_an_incompatible_version_before_loading(monkeypatch):
    from o1_retriever.errors import DependencyError
    from o1_retriever.thinkers.llamacpp import load_llama

    _stand_in_llama_cpp(monkeypatch, None)
    with pytest.raises(DependencyError, match="install llama-cpp-python>=0.3,<0.4"):
        load_llama("/nowhere/model.gguf")


def test_the_installed_llama_cpp_has_every_private_part_used():
    internals = pytest.importorskip("llama_cpp._internals", reason="llama-cpp-python is an optional extra")
    from o1_retriever.thinkers._llamacpp_private import _USED, check_llama_cpp

    check_llama_cpp()
    assert all(callable(getattr(getattr(internals, name), m)) for name, methods in _USED.items() for m in methods)
