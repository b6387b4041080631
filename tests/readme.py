"""Read the README's own commands and tables, so tests follow it instead of a copy."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title):
    """Return the text of the '## title' section."""
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def code_blocks(title, lang="sh"):
    """Return the fenced code blocks of a section."""
    return re.findall(rf"```{lang}\n(.*?)```", section(title), flags=re.S)


def commented_commands(title):
    """Return [(comment, command)] of the first sh block of a section."""
    pairs, comment = [], None
    for line in code_blocks(title)[0].splitlines():
        if line.startswith("#"):
            comment = line.lstrip("# ")
        elif line.strip():
            pairs.append((comment, line))
    return pairs


def table_rows(title):
    """Return the cells of every table row of a section, header and rule rows excluded."""
    rows = []
    for line in section(title).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(cells[0]) <= set("-: ") and cells[0] != "variable":
            rows.append(cells)
    return rows
