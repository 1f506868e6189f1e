"""The block model every report is built from, and its two renderers, :func:`to_markdown` and :func:`to_html`.

A document is a list of blocks (:class:`Heading`, :class:`Paragraph`, :class:`CodeBlock`, :class:`Bullets`,
:class:`Table`, :class:`Image`, :class:`Details`). Markdown escapes ``|`` in table cells; HTML escapes all text.
:class:`Details` (a folded table) is HTML only: Markdown cannot fold, so :func:`to_markdown` leaves it out.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """Inline code, inside a paragraph or a table cell."""

    text: str


@dataclass(frozen=True)
class Cell:
    """A table cell: text or code; ``rank`` 1 marks the best (bold, red), 2 the second best (italics, blue);
    ``image`` makes it a thumbnail linking to that image."""

    content: str | Code = ""
    rank: int = 0
    image: str | None = None


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


class Paragraph:
    """Text, with :class:`Code` spans in it."""

    def __init__(self, *parts: str | Code) -> None:
        self.parts = parts


@dataclass(frozen=True)
class CodeBlock:
    lines: Sequence[str]


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    """``left`` leading columns are left-aligned (in HTML; the rest align right)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str | Cell]]
    left: int = 0


@dataclass(frozen=True)
class Image:
    """A figure; ``path`` is relative to the document."""

    path: str
    alt: str


@dataclass(frozen=True)
class Details:
    """A table folded under ``summary``: HTML only."""

    summary: str
    table: Table


Block = Heading | Paragraph | CodeBlock | Bullets | Table | Image | Details


def to_markdown(blocks: Sequence[Block]) -> str:
    """GitHub-flavoured Markdown, one blank line between blocks."""
    return "\n\n".join(_markdown(block) for block in blocks if not isinstance(block, Details)) + "\n"


def _markdown(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return "".join(map(_markdown_inline, block.parts))
    if isinstance(block, CodeBlock):
        return "\n".join(["```", *block.lines, "```"])
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Image):
        return f"![{block.alt}]({block.path})"
    lines = [_markdown_row(block.header), "|---" * len(block.header) + "|", *map(_markdown_row, block.rows)]
    return "\n".join(lines)


def _markdown_inline(part: str | Code) -> str:
    return f"`{part.text}`" if isinstance(part, Code) else part


def _markdown_row(cells: Sequence[str | Cell]) -> str:
    return "| " + " | ".join(map(_markdown_cell, cells)) + " |"


def _markdown_cell(cell: str | Cell) -> str:
    cell = cell if isinstance(cell, Cell) else Cell(cell)
    if cell.image is not None:
        return f"[![]({cell.image})]({cell.image})"
    text = _markdown_inline(cell.content).replace("|", "\\|")
    return f"**{text}**" if cell.rank == 1 else f"_{text}_" if cell.rank == 2 else text


def to_html(blocks: Sequence[Block], title: str) -> str:
    """A standalone HTML page; the best and second-best cells in red and blue, as in the MDF paper."""
    body = "\n".join(_html(block) for block in blocks)
    return _PAGE.format(title=html.escape(title), body=body)


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{''.join(map(_html_inline, block.parts))}</p>"
    if isinstance(block, CodeBlock):
        return f"<pre>{html.escape(chr(10).join(block.lines))}</pre>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Image):
        return f'<p><img class="plot" src="{html.escape(block.path)}" alt="{html.escape(block.alt)}"></p>'
    if isinstance(block, Details):
        return f"<details><summary>{html.escape(block.summary)}</summary>{_html(block.table)}</details>"
    header = "".join(f"<th{_LEFT if i < block.left else ''}>{html.escape(text)}</th>"
                     for i, text in enumerate(block.header))
    rows = ["<tr>" + "".join(_html_cell(cell, i < block.left) for i, cell in enumerate(row)) + "</tr>"
            for row in block.rows]
    return "\n".join([f"<table><tr>{header}</tr>", *rows, "</table>"])


def _html_inline(part: str | Code) -> str:
    return f"<code>{html.escape(part.text)}</code>" if isinstance(part, Code) else html.escape(part)


def _html_cell(cell: str | Cell, left: bool) -> str:
    cell = cell if isinstance(cell, Cell) else Cell(cell)
    css = _LEFT if left else {1: " class='best'", 2: " class='second'"}.get(cell.rank, "")
    if cell.image is not None:
        path = html.escape(cell.image)
        return f'<td{css}><a href="{path}"><img class="thumb" src="{path}" alt=""></a></td>'
    return f"<td{css}>{_html_inline(cell.content)}</td>"


_LEFT = " class='left'"

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1600px; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }}
th {{ background: #f3f3f3; }} td.left, th.left {{ text-align: left; }}
.best {{ color: #c00; font-weight: bold; }} .second {{ color: #00c; font-style: italic; }}
img.plot {{ max-width: 100%; }} img.thumb {{ width: 160px; image-rendering: pixelated; }}
pre {{ background: #f6f6f6; padding: 0.5em; overflow-x: auto; }}
</style></head><body>
{body}
</body></html>
"""
