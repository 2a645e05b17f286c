"""The documentation site builds in strict mode, documents every public name and loads nothing from the internet."""

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import mongodb_session_manager

ROOT = Path(__file__).resolve().parents[2]
API_REFERENCE = ROOT / "docs" / "api-reference"
_EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_CSS_EXTERNAL = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])\s*(?:https?:)?//", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^:::\s+(?P<identifier>[\w.]+)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the site once for this module, with ``mkdocs build --strict``."""
    output = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return output


class ResourceFinder(HTMLParser):
    """Collects what an HTML page loads by itself: scripts, stylesheets, fonts, images, frames, inline CSS URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str]] = []  # (what, URL or CSS text)
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and attributes.get("src"):
            self.loads.append((f"<{tag} src>", attributes["src"]))
        if tag == "link" and attributes.get("href"):
            self.loads.append((f"<link rel={attributes.get('rel', '')}>", attributes["href"]))
        if tag == "object" and attributes.get("data"):
            self.loads.append(("<object data>", attributes["data"]))
        if _CSS_EXTERNAL.search(attributes.get("style", "")):
            self.loads.append((f"<{tag} style>", attributes["style"]))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and _CSS_EXTERNAL.search(data):
            self.loads.append(("<style>", data[:200]))

    def external(self) -> list[str]:
        return [
            f"{what} {value}"
            for what, value in self.loads
            if _EXTERNAL.search(value) or (what.endswith("style>") and _CSS_EXTERNAL.search(value))
        ]


@pytest.mark.slow
def test_site_builds_in_strict_mode(site: Path):
    assert (site / "index.html").is_file()
    assert (site / "architecture" / "data-model.html").is_file()


class LinkFinder(HTMLParser):
    """Collects the href of every ``<a>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


@pytest.mark.slow
def test_site_can_be_browsed_from_disk(site: Path):
    """Every link inside the site names a file, so that it opens from file:// (a folder link shows a listing)."""
    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html":
            continue  # the web server's error page, with links from the site root
        finder = LinkFinder()
        finder.feed(page.read_text(encoding="utf-8"))
        for href in finder.hrefs:
            if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^//", href, re.IGNORECASE):
                continue  # another site, mailto:, or an anchor of this page
            target = (page.parent / href.split("#", 1)[0].split("?", 1)[0]).resolve()
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {href}")
    assert not broken, "\n".join(sorted(set(broken))[:40])
    performance = (site / "architecture" / "performance.html").read_text(encoding="utf-8")
    charts = re.findall(r'src="(benchmarks/[^"]+\.png)"', performance)
    assert charts and all((site / "architecture" / chart).is_file() for chart in charts)


@pytest.mark.slow
def test_site_loads_no_script_style_or_font_from_the_internet(site: Path):
    external = []
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        html = page.read_text(encoding="utf-8")
        finder = ResourceFinder()
        finder.feed(html)
        external += [f"{page.relative_to(site)}: {load}" for load in finder.external()]
        if 'class="mermaid"' in html:  # Material would load mermaid from unpkg.com
            external.append(f"{page.relative_to(site)}: a mermaid diagram")
    for stylesheet in sorted(site.rglob("*.css")):
        if _CSS_EXTERNAL.search(stylesheet.read_text(encoding="utf-8", errors="replace")):
            external.append(f"{stylesheet.relative_to(site)}: url() or @import of an external resource")
    assert not external, "\n".join(external)


def test_resource_finder_sees_external_scripts_styles_and_fonts():
    finder = ResourceFinder()
    finder.feed(
        '<script src="https://cdn.example/x.js?v=1"></script><link rel="stylesheet" href="//fonts.example/css">'
        '<style>@import "https://fonts.example/f.css";</style><div style="background: url(http://x/y.png)"></div>'
        '<script src="../assets/local.js"></script><a href="https://pypi.org/">a link is not a load</a>'
    )
    assert len(finder.external()) == 4


def public_names() -> list[str]:
    return sorted(mongodb_session_manager.__all__)


def test_every_public_name_has_an_api_reference_directive():
    identifiers = {
        match["identifier"] for page in API_REFERENCE.glob("*.md") for match in _DIRECTIVE.finditer(page.read_text())
    }
    documented = {identifier.rsplit(".", 1)[-1] for identifier in identifiers}
    missing = [name for name in public_names() if name not in documented]
    assert not missing, f"add `::: mongodb_session_manager.<name>` to a page in docs/api-reference/ for: {missing}"


@pytest.mark.slow
def test_every_public_name_is_rendered_in_the_api_reference(site: Path):
    html = "".join(page.read_text(encoding="utf-8") for page in (site / "api-reference").rglob("*.html"))
    missing = [name for name in public_names() if f'id="mongodb_session_manager.{name}"' not in html]
    assert not missing, f"no rendered API entry for: {missing}"
