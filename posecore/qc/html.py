"""HTML building blocks shared by the sections of the QC report: escaping, numbers, tables, figures, clips.

Every section module (labels, training, archive) returns a `Section`: an HTML fragment built from
these, so the page has one look and one escaping rule (text from inputs goes through `esc`, cells
are passed to `table` escaped), and the figures and clips it shows as `ReportFigure`s and
`ReportClip`s, which the page inlines and the workflow also writes as files for Snakemake's
`--report`, each with its caption.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True)
class _ReportFile:
    """What a figure and a clip share: a name, the stem of the file it is also written to.

    Attributes:
        name: file stem, unique within a report, lowercase `[a-z0-9_.-]`; checked when made.
    """

    name: str
    _kind = "file"  # in the error message; not a field (no annotation)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"{self._kind} name {self.name!r} must match {_NAME.pattern}")


@dataclass(frozen=True)
class ReportFigure(_ReportFile):
    """One figure of the report: PNG bytes, a file-name stem and the caption shown under it.

    Attributes:
        name: file stem, unique within a report, lowercase `[a-z0-9_.-]` (e.g. "labels-positions").
        png: the image, PNG-encoded.
        caption: what the figure shows and how to read it, in a sentence or two.
        alt: a short text alternative for the image.
    """

    _kind = "figure"
    png: bytes
    caption: str
    alt: str

    def html(self) -> str:
        """The figure as an inline `<figure>` with a base64 data URI."""
        uri = "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")
        return figure(uri, self.alt, self.caption)


@dataclass(frozen=True)
class ReportClip(_ReportFile):
    """One short video of the report: MP4 bytes, a file-name stem and its caption.

    Attributes:
        name: file stem, unique within a report, lowercase `[a-z0-9_.-]` (like `ReportFigure.name`).
        mp4: the clip, H.264 yuv420p in an MP4 container with its index at the front.
        caption: what the clip shows, in a sentence or two.
        alt: a short text alternative.
    """

    _kind = "clip"
    mp4: bytes
    caption: str
    alt: str

    def html(self, embed: bool) -> str:
        """The clip as a `<figure>`: a `<video>` with a base64 data URI, or a note naming its file."""
        caption = f"<figcaption>{esc(self.caption)}</figcaption>"
        if not embed:
            note = f"clip {self.name}.mp4 ({len(self.mp4) / 1000:.0f} kB) is written beside the report, not embedded"
            return f'<figure><p class="meta">{esc(note)}</p>{caption}</figure>'
        uri = "data:video/mp4;base64," + base64.b64encode(self.mp4).decode("ascii")
        return (
            f'<figure><video controls muted loop preload="metadata" title="{esc(self.alt)}" src="{uri}"></video>'
            f"{caption}</figure>"
        )


@dataclass(frozen=True)
class Section:
    """One section of the report: its heading, its HTML body and the figures and clips that body shows.

    Attributes:
        title: the section heading (plain text; escaped when rendered).
        body: the section's HTML fragment; it places its figures with `ReportFigure.html()` and
            its clips with `ReportClip.html(embed)`.
        figures: the figures in `body`, in order, for writing as separate files.
        clips: the clips of `body`, in order (embedded ones and ones only written as files), for
            writing as separate files.
    """

    title: str
    body: str
    figures: tuple[ReportFigure, ...] = ()
    clips: tuple[ReportClip, ...] = ()

    def html(self) -> str:
        """The section as HTML: an `<h2>` heading and the body."""
        return f"<section><h2>{esc(self.title)}</h2>\n{self.body}</section>"


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
