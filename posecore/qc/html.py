"""HTML building blocks shared by the sections of the QC report: escaping, numbers, tables, figures.

Every section module returns an HTML fragment built from these, so the page has one look and
one escaping rule: text from inputs goes through `esc`, cells are passed to `table` escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell; "–" for missing."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def esc(value: Any) -> str:
    """`value` as HTML-escaped text."""
    return html.escape(str(value))


def table(header: Sequence[str], rows: Sequence[Sequence[str]], css_class: str) -> str:
    """An HTML table; cells are given already escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure(uri: str, alt: str, caption: str) -> str:
    """An inline image with its caption."""
    return f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(caption)}</figcaption></figure>'


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; } table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
.ok { color: #2a7a2a; } .bad { color: #b22222; font-weight: bold; }
figure { margin: 0.8em 0; } img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.85em; } details { margin: 0.4em 0; font-size: 0.85em; }
"""
