"""MkDocs hooks of the documentation site (mkdocs.yml `hooks:`).

* The notebooks live in ``notebooks/`` at the repository root (where people open them); they are
  added to the site's files here, before mkdocs-jupyter renders them, rather than copied.
* The command-line reference is generated at build time from the typer app by typer's own
  Markdown generator (the one behind ``typer ... utils docs``), so it lists every command and
  option that exists when the site is built and cannot drift from the code.
* The docstrings are Google style with a few reStructuredText habits (``:class:`X``` roles,
  ``Example::``) that mkdocstrings shows literally; the rendered API pages drop those marks.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("notebooks/build_index.ipynb", "notebooks/rag_compare.ipynb")
CLI_MARKER = "<!-- cli-reference -->"
_RST_ROLE = re.compile(r":(?:class|mod|meth|func|attr|data|exc|obj):(?=<code)")
_RST_LITERAL_INTRO = re.compile(r"::</p>")


@event_priority(100)  # before mkdocs-jupyter's on_files turns .ipynb files into pages
def on_files(files: Files, config) -> Files:
    for path in NOTEBOOKS:
        if not (ROOT / path).is_file():
            raise FileNotFoundError(f"notebook missing: {path}")
        files.append(File(path, src_dir=str(ROOT), dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "cli.md":
        return markdown
    if CLI_MARKER not in markdown:
        raise ValueError(f"cli.md must contain {CLI_MARKER} where the generated reference goes")
    return markdown.replace(CLI_MARKER, cli_reference())


def cli_reference() -> str:
    """Markdown for every command of ``o1-retriever``: usage, arguments, options with defaults."""
    import click
    import typer.main
    from typer.cli import get_docs_for_click

    from o1_retriever.cli import app

    command = typer.main.get_command(app)
    text = get_docs_for_click(obj=command, ctx=click.Context(command), name="o1-retriever", indent=1)
    # typer writes "$ o1-retriever ..." usage lines in `console` blocks; they are usage, not
    # commands to run, so they are shown as plain text
    return re.sub(r"```console\n", "```text\n", text)


def on_page_content(html: str, page, config, files) -> str:
    if not page.file.src_uri.startswith("api/"):
        return html
    return _RST_LITERAL_INTRO.sub(":</p>", _RST_ROLE.sub("", html))
