"""Reports a person reads: sections of tables, figures and commentary, as Markdown and as one self-contained HTML
file (images embedded as base64, no external resources)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplab.files import write_text
from mlplab.provenance import provenance

__all__ = ["Figure", "Section", "Table", "difference", "percent", "points", "write_html", "write_markdown"]


def percent(value: float | None) -> str:
    """An accuracy as a percentage with two decimals; a dash when missing."""
    return "—" if value is None else f"{100 * value:.2f}%"


def points(delta: float | None) -> str:
    """A difference of accuracies in percentage points, signed."""
    return "—" if delta is None else f"{100 * delta:+.2f} pts"


def difference(a: float | None, b: float | None) -> float | None:
    """a − b, or None when either is missing (a run that diverged before its first epoch has no accuracy)."""
    return None if a is None or b is None else a - b


@dataclass
class Table:
    """A header row and body rows of already formatted cells."""

    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        return "\n".join([line(self.header), line(["---"] * len(self.header)), *map(line, self.rows)])

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.header)
        body = "".join(
            "<tr>" + "".join(_cell(c, header=i == 0) for i, c in enumerate(row)) + "</tr>" for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


NUMBER = re.compile(r"[+\-−]?[\d.,]+(e[+-]?\d+)?(%| pts)?|—")


def _cell(text: str, header: bool) -> str:
    """Numbers align right so their digits line up; text aligns left."""
    tag = "th" if header else "td"
    kind = ' class="num"' if NUMBER.fullmatch(text.strip()) else ""
    return f"<{tag}{kind}>{html.escape(text)}</{tag}>"


@dataclass
class Figure:
    """A PNG on disk and its caption."""

    path: Path
    caption: str


@dataclass
class Section:
    """One experiment in the report: what was done, its table(s), what the numbers show, and its figures."""

    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    commentary: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def provenance_section(record: dict[str, Any] | None = None) -> Section:
    """What produced the report (this process unless `record` says otherwise), as its last section."""
    record = record or provenance()
    git = record["git"]
    commit = (
        "—" if git is None else git["commit"] + {True: " (modified)", False: "", None: " (state unknown)"}[git["dirty"]]
    )
    blas = "; ".join(f"{b['library']} {b['version']}, {b['threads']} threads" for b in record["blas"]) or "—"
    rows = [
        ["mlplab", str(record["mlplab"])],
        ["git commit", commit],
        ["Python", str(record["python"])],
        *(
            [label, str(record[name] or "—")]
            for label, name in (("NumPy", "numpy"), ("SciPy", "scipy"), ("numba", "numba"))
        ),
        ["BLAS", blas],
        ["CPU", str(record["cpu"])],
        ["command", str(record["command"])],
    ]
    return Section("Provenance", "What produced this report.", [Table(["", "value"], rows)])


def write_markdown(path: str | Path, title: str, sections: Sequence[Section], preamble: str = "") -> Path:
    """report.md: figures linked by paths relative to the report, then what produced it."""
    path = Path(path)
    sections = [*sections, provenance_section()]
    parts = [f"# {title}", ""]
    if preamble:
        parts += [preamble, ""]
    for section in sections:
        parts += [f"## {section.title}", ""]
        if section.intro:
            parts += [section.intro, ""]
        for table in section.tables:
            parts += [table.markdown(), ""]
        parts += [f"* {line}" for line in section.commentary]
        if section.commentary:
            parts.append("")
        for figure in section.figures:
            parts += [f"![{figure.caption}]({_relative(figure.path, path.parent)})", "", f"*{figure.caption}*", ""]
    write_text(path, "\n".join(parts).rstrip() + "\n")
    return path


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .3em .7em; text-align: left; vertical-align: top; }
.num, thead th:not(:first-child) { text-align: right; }
thead th { background: #eee; }
tbody th { text-align: left; font-weight: 600; background: #fafafa; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-style: italic; color: #555; }
li { margin: .3em 0; }
"""


def write_html(path: str | Path, title: str, sections: Sequence[Section], preamble: str = "") -> Path:
    """report.html: one file with every image embedded, readable offline in any browser; what produced it last."""
    path = Path(path)
    sections = [*sections, provenance_section()]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if preamble:
        body.append(f"<p>{_inline(preamble)}</p>")
    for section in sections:
        body.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.intro:
            body.append(f"<p>{_inline(section.intro)}</p>")
        body += [table.html() for table in section.tables]
        if section.commentary:
            body.append("<ul>" + "".join(f"<li>{_inline(line)}</li>" for line in section.commentary) + "</ul>")
        for figure in section.figures:
            data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
            alt = html.escape(figure.caption, quote=True)
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
                f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
            )
        body.append("</section>")
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    write_text(path, page)
    return path


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** spans."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _relative(target: Path, start: Path) -> str:
    try:
        return target.resolve().relative_to(start.resolve()).as_posix()
    except ValueError:
        return target.resolve().as_posix()
