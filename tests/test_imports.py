"""Architecture checks on the source itself: no import cycle inside ``o1_retriever/``, and the
core never imports a RAG framework (the adapters depend on the core, never the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "o1_retriever"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``__init__`` = the package)."""
    out = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports anywhere: at the top, inside functions
    (lazy imports) and under ``TYPE_CHECKING`` alike, since each is a dependency. ``from pkg
    import sub`` points at the submodule when there is one, else at ``pkg``."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (known(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else known(base) or "")
    found.discard("")
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_no_import_cycles_in_the_package():
    found = cycles(package_graph())
    assert not found, "import cycles inside o1_retriever/: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_check_finds_cycles(tmp_path):
    """The checker itself: a two-module cycle through a lazy import and a three-module cycle
    through relative imports are both reported; a chain is not."""
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from demo.b import g\n")
    (pkg / "b.py").write_text("from demo import a\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "x.py").write_text("from .y import h\n")
    (pkg / "sub" / "y.py").write_text("from . import z\n")
    (pkg / "sub" / "z.py").write_text("from ..sub import x\n")
    (pkg / "chain.py").write_text("import demo.a\n")
    modules = module_files(pkg)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert sorted(cycles(graph)) == [["demo.a", "demo.b"], ["demo.sub.x", "demo.sub.y", "demo.sub.z"]]


def test_core_imports_no_rag_framework():
    frameworks = ("langchain", "langchain_core", "llama_index", "langchain_o1")
    offenders = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{name}: {n}" for n in names if n.split(".")[0] in frameworks]
    assert not offenders, offenders


def test_adaptive_thinking_flows_one_way():
    """The gate only decides (it imports nothing above the error family); the gated search
    (``o1_retriever.search``) sits above the embedder and the gate and below the stores that
    hand it their vector search, so it imports no index and no evaluation."""
    graph = package_graph()
    assert graph["o1_retriever.gate"] <= {"o1_retriever.errors"}, sorted(graph["o1_retriever.gate"])
    assert {"o1_retriever.embedder", "o1_retriever.gate"} <= graph["o1_retriever.search"]
    upward = sorted(m for m in graph["o1_retriever.search"] if m.startswith(("o1_retriever.index", "o1_retriever.evaluation", "o1_retriever.cli")))
    assert not upward, f"o1_retriever.search imports {upward}"
