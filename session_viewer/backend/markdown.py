"""Markdown to a JSON syntax tree (see API.md): the frontend builds DOM from it without ``innerHTML``."""

from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = ["SAFE_LINK_SCHEMES", "markdown_ast"]

SAFE_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
"""URL schemes kept on links; any other link is reduced to its text."""

_parser = MarkdownIt("commonmark", {"html": False}).enable("table")

_CONTAINERS = {
    "paragraph",
    "blockquote",
    "bullet_list",
    "list_item",
    "strong",
    "em",
    "table",
    "thead",
    "tbody",
    "tr",
    "softbreak",
    "hardbreak",
    "hr",
}
_ALIGNMENTS = {"text-align:left": "left", "text-align:center": "center", "text-align:right": "right"}

Node = dict[str, Any]


def markdown_ast(text: str) -> Node:
    """Parse ``text`` as CommonMark (raw HTML disabled, tables enabled) into a JSON-safe tree."""
    root = SyntaxTreeNode(_parser.parse(text))
    return {"type": "document", "children": _children(root)}


def _children(node: SyntaxTreeNode) -> list[Node]:
    """Convert the children of ``node``, splicing in the ones that only group others."""
    converted: list[Node] = []
    for child in node.children:
        converted.extend(_convert(child))
    return converted


def _convert(node: SyntaxTreeNode) -> list[Node]:
    """Convert one node; returns several nodes where a node is replaced by its children."""
    kind = node.type
    if kind == "inline" or (kind == "paragraph" and node.hidden):
        return _children(node)
    if kind == "text":
        return [{"type": "text", "text": node.content, "children": []}]
    if kind == "code_inline":
        return [{"type": "inline_code", "text": node.content, "children": []}]
    if kind in ("fence", "code_block"):
        info = node.info.strip() if kind == "fence" else ""
        return [{"type": "code_block", "text": node.content, "info": info, "children": []}]
    if kind == "heading":
        return [{"type": "heading", "level": int(node.tag[1:]), "children": _children(node)}]
    if kind == "ordered_list":
        start = node.attrs.get("start", 1)
        return [{"type": "ordered_list", "start": int(start), "children": _children(node)}]
    if kind == "link":
        href = str(node.attrs.get("href", ""))
        if _safe_href(href):
            return [{"type": "link", "href": href, "children": _children(node)}]
        return _children(node)
    if kind == "image":
        return [{"type": "image", "alt": _plain_text(node), "children": []}]
    if kind in ("th", "td"):
        align = _ALIGNMENTS.get(str(node.attrs.get("style", "")))
        return [{"type": kind, "align": align, "children": _children(node)}]
    if kind in _CONTAINERS:
        return [{"type": kind, "children": _children(node)}]
    return [{"type": "text", "text": node.content, "children": []}] if node.content else _children(node)


def _safe_href(href: str) -> bool:
    """Return True for links whose scheme is http, https or mailto."""
    try:
        scheme = urlsplit(href).scheme
    except ValueError:
        return False
    return scheme.lower() in SAFE_LINK_SCHEMES


def _plain_text(node: SyntaxTreeNode) -> str:
    """Concatenate the text below ``node`` (an image's alt text)."""
    parts: list[str] = []
    for child in node.walk(include_self=False):
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)
