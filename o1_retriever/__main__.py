"""``python -m o1_retriever`` = the ``o1-retriever`` command (handy where scripts are not on PATH)."""

from o1_retriever.cli import main

main()
