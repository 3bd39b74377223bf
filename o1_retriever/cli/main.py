"""The ``o1-retriever`` app with every command registered: importing a command module
registers its commands on the shared app (:mod:`o1_retriever.cli.app`), in this order in
``--help``."""

# isort: off
from o1_retriever.cli import index, search  # noqa: F401  (index, search, demo)
from o1_retriever.cli import evaluate  # noqa: F401  (eval, calibrate, frontier, rag-eval)
from o1_retriever.cli import train  # noqa: F401  (synthesize, train)
from o1_retriever.cli import adapt  # noqa: F401  (adapt)
from o1_retriever.cli import cache  # noqa: F401  (cache stats / clear)
from o1_retriever.cli import collections  # noqa: F401  (collections, collections list / info / delete)
from o1_retriever.cli.app import app

# isort: on


def main() -> None:  # pragma: no cover - console entry point wrapper
    app()
