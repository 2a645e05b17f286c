"""MkDocs hooks: publish the benchmark charts for ``architecture/performance.md``.

The benchmark charts live in ``benchmarks/results/`` (where ``python -m benchmarks`` writes them), outside the docs
directory, and the page links them relatively so it also reads well on a repository browser. These hooks copy
every chart into the site as ``architecture/benchmarks/<name>.png`` and point the page's links there, so the
strict build still checks that the linked chart exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
SITE_FOLDER = "architecture/benchmarks"
_LINK = re.compile(r"\]\((?:\.\./)+benchmarks/results/([^)\s]+\.png)\)")


def on_files(files: Files, config: Any) -> Files:
    """Add the benchmark charts to the site."""
    for chart in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"{SITE_FOLDER}/{chart.name}", abs_src_path=str(chart)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point links to ``benchmarks/results/*.png`` at the copies published with the site."""
    if page.file.src_uri != "architecture/performance.md":
        return markdown
    return _LINK.sub(lambda match: f"](benchmarks/{match.group(1)})", markdown)
