"""Every ```python block in docs/ and README.md runs, or says why it cannot.

The blocks of one page run in order in one fresh Python process (later blocks use names defined by earlier
ones), in an empty temporary directory, without ``MONGODB_URI`` and with ``STRANDS_MODEL_PROVIDER=demo``: the
library starts its embedded development server and examples get the offline demo model. A renamed method or
a changed return value breaks this test, not the reader.

A block that cannot run here (it needs real AWS resources, a real MongoDB URI, a running server, ...) is
preceded by an HTML comment on the line right before its fence::

    <!-- illustrative: needs a real AWS account -->

and is only checked for a reason. Such a block is still compiled, so it cannot hold a syntax error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
TIMEOUT_SECONDS = 240
MIN_RUNNABLE_SHARE = 0.75

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_MARKER = re.compile(r"^\s*<!--\s*illustrative\b(?P<colon>:?)(?P<reason>.*?)-->\s*$")
_ANY_MARKER = re.compile(r"<!--\s*illustrative", re.IGNORECASE)

# Runs in the child process: execute each block in one shared namespace. Padding the code with blank lines
# makes tracebacks point at the block's real line in the Markdown file.
_RUNNER = """
import json, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "docs_snippet"}
for block in blocks:
    print(f"=== {block['page']}:{block['line']}", flush=True)
    code = "\\n" * block["line"] + block["code"]
    exec(compile(code, block["path"], "exec"), namespace)
"""


@dataclass
class Block:
    """One fenced ```python block of a Markdown page."""

    page: str  # path relative to the repository root
    path: str  # absolute path, for tracebacks
    line: int  # line of the opening fence (1-based); the code starts on the next line
    code: str
    illustrative: str | None  # the reason, when the block is marked illustrative

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_page(path: Path) -> tuple[list[Block], list[str]]:
    """Return the page's python blocks and the problems found with its illustrative markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    blocks: list[Block] = []
    problems: list[str] = []
    marker_lines: set[int] = set()
    fenced: set[int] = set()  # lines inside any fenced block (a marker shown as an example there is not a marker)
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, info = opening.group("indent"), opening.group("fence"), opening.group("info").lower()
        end = index + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end])
            if closing and closing.group("fence").startswith(fence[0] * len(fence)) and not closing.group("info"):
                break
            end += 1
        fenced.update(range(index, end + 1))
        if info in ("python", "py"):
            body = [
                line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[index + 1 : end]
            ]
            reason = None
            if index > 0 and (marker := _MARKER.match(lines[index - 1])):
                marker_lines.add(index - 1)
                reason = marker.group("reason").strip() if marker.group("colon") else ""
                if not reason:
                    problems.append(f"{page}:{index}: illustrative marker without a reason")
                    reason = ""
            blocks.append(Block(page, str(path), index + 1, "\n".join(body) + "\n", reason))
        index = end + 1
    for number, line in enumerate(lines):
        if _ANY_MARKER.search(line) and number not in marker_lines and number not in fenced:
            problems.append(
                f"{page}:{number + 1}: illustrative marker that is not on the line right before a ```python fence"
            )
    return blocks, problems


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in parse_page(page)[0]]


def runnable_pages() -> list[Path]:
    return [page for page in PAGES if any(block.illustrative is None for block in parse_page(page)[0])]


def test_illustrative_markers_give_a_reason_and_mark_a_python_block():
    problems = [problem for page in PAGES for problem in parse_page(page)[1]]
    assert not problems, "\n".join(problems)


def test_markers_are_checked(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- illustrative: needs a real AWS account -->\n```python\nimport boto3\n```\n\n"
        "<!-- illustrative -->\n```python\nx = 1\n```\n\n"
        "<!-- illustrative: stray -->\n\n```python\ny = 2\n```\n\n"
        "```text\n<!-- illustrative: an example of the marker, inside a fence -->\n```\n"
        "- a list item\n\n  ```python\n  z = 3\n  ```\n"
    )
    blocks, problems = parse_page(page)
    assert [(block.line, block.illustrative) for block in blocks] == [
        (2, "needs a real AWS account"),
        (7, ""),
        (13, None),
        (22, None),
    ]
    assert blocks[3].code == "z = 3\n"
    assert problems == [
        "page.md:6: illustrative marker without a reason",
        "page.md:11: illustrative marker that is not on the line right before a ```python fence",
    ]


def test_every_block_compiles():
    errors = []
    for block in all_blocks():
        try:
            compile(block.code, block.where, "exec")
        except SyntaxError as error:
            errors.append(f"{block.where}: {error}")
    assert not errors, "\n".join(errors)


def test_most_blocks_run():
    blocks = all_blocks()
    ran = [block for block in blocks if block.illustrative is None]
    illustrative = [block for block in blocks if block.illustrative is not None]
    summary = f"{len(ran)} python blocks run, {len(illustrative)} illustrative, in {len(runnable_pages())} pages"
    print(summary)
    for block in illustrative:
        print(f"  illustrative {block.where}: {block.illustrative}")
    assert len(ran) >= 40, summary
    assert len(ran) >= MIN_RUNNABLE_SHARE * len(blocks), summary


@pytest.mark.slow
@pytest.mark.parametrize("page", runnable_pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_page_blocks_run_in_order(page: Path, tmp_path: Path, embedded_dir: Path):
    blocks = [block for block in parse_page(page)[0] if block.illustrative is None]
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(json.dumps([asdict(block) for block in blocks]))
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MONGODB_URI", "MONGODB_SESSION_MANAGER_DATA_DIR")
    }
    env["STRANDS_MODEL_PROVIDER"] = "demo"
    env["MONGODB_SESSION_MANAGER_DATA_DIR"] = str(embedded_dir)  # a fresh embedded server, stopped afterwards
    env.pop("STRANDS_MODEL_ID", None)
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(blocks_file)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-6000:]}"
