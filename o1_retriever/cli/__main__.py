"""``python -m o1_retriever.cli`` (also what ``accelerate launch -m o1_retriever.cli`` runs)."""

from o1_retriever.cli.main import main

main()
