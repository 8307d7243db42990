"""mkdocs hooks: the changelog from `git log`, the quoted-numbers table from docs/numbers.yaml, at build time."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def changelog() -> str:
    """Every commit, newest first, grouped by day; a note instead when there is no git history (an sdist)."""
    try:
        log = subprocess.run(
            ["git", "log", "--format=%ad%x09%h%x09%s", "--date=short", "--no-merges"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "*(no git history here: see the repository's `git log`)*\n"
    lines: list[str] = []
    day = None
    for line in log.splitlines():
        date, commit, subject = line.split("\t", 2)
        if date != day:
            lines += ["", f"## {date}", ""]
            day = date
        subject = subject.replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_")
        lines.append(f"* `{commit}` {subject}")
    return "\n".join(lines) + "\n"


def numbers_table() -> str:
    """docs/numbers.yaml as tables: the numbers CI re-measures, then the expensive ones with date and machine."""
    entries = yaml.safe_load((ROOT / "docs" / "numbers.yaml").read_text())["numbers"]
    cheap = ["| number | quoted | command | tolerance | where |", "| --- | --- | --- | --- | --- |"]
    dear = [
        "| number | quoted | command | measured | machine | spread, or exact on one machine only? |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        where = ", ".join("the README" if p == "README.md" else f"[{p}]({p})" for p in e["pages"])
        quoted = "; ".join(f"`{q}`" for q in e["quoted"])
        head = f"| {e['what']} | {quoted} | `{e['command']}` |"
        if e.get("check"):
            cheap.append(f"{head} {e.get('tolerance', 'exact')} | {where} |")
        else:
            dear.append(f"{head} {e['measured']} | {e['machine']} | {e.get('spread', '—')} |")
    return (
        "## Re-measured by CI (`python docs/check_numbers.py`)\n\n"
        + "\n".join(cheap)
        + "\n\n## Too expensive for CI: when and where they were last measured\n\n"
        + "\n".join(dear)
        + "\n"
    )


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the generated parts of changelog.md and numbers.md."""
    if page.file.src_uri == "changelog.md":
        return markdown.replace("<!-- changelog -->", changelog())
    if page.file.src_uri == "numbers.md":
        return markdown.replace("<!-- numbers -->", numbers_table())
    return markdown
