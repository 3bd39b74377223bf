"""The ``o1-retriever`` command line (typer).

:mod:`.app` holds what commands share (the app, the consoles, the ``command`` decorator with the
model options, collection options); each command module (:mod:`.index`, :mod:`.search`,
:mod:`.evaluate`, :mod:`.train`, ...) imports only from it, and :mod:`.main` imports them all.
"""

from o1_retriever.cli.main import app, main

__all__ = ["app", "main"]
