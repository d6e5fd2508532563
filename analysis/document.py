"""A small document model written two ways: markdown (figures as links to the files beside
it) and one self-contained HTML file (figures embedded, no network, no extra package).

Text may use two inline marks, ``**bold**`` and ```code```; everything else is literal
(escaped in HTML). Tables are DataFrames whose cells are such text.
"""
from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:.5rem 0 1.2rem;font-size:.9rem}th,td{border:1px solid #ccc;padding:.2rem .5rem;
vertical-align:top}th{background:#f3f3f3}figure{margin:1rem 0}img{max-width:100%}figcaption,.caption{font-size:.9rem;
color:#333}code{background:#f3f3f3;padding:0 .2rem}pre{background:#f6f6f6;padding:.5rem;overflow-x:auto}"""
MIME = {".png": "image/png", ".svg": "image/svg+xml"}


def inline_html(text: str) -> str:
    """Escaped text with ``**bold**`` and ```code``` as HTML."""
    out = html.escape(str(text))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out).replace("\n", "<br>")


@dataclass
class Heading:
    text: str
    level: int = 2

    def markdown(self, base: Path) -> str:
        return f"{'#' * self.level} {self.text}\n"

    def html(self) -> str:
        return f"<h{self.level}>{inline_html(self.text)}</h{self.level}>"


@dataclass
class Paragraph:
    text: str

    def markdown(self, base: Path) -> str:
        return f"{self.text}\n"

    def html(self) -> str:
        return f"<p>{inline_html(self.text)}</p>"


@dataclass
class Bullets:
    items: list[str]

    def markdown(self, base: Path) -> str:
        return "\n".join(f"- {item}" for item in self.items) + "\n"

    def html(self) -> str:
        return "<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in self.items) + "</ul>"


@dataclass
class Table:
    table: pd.DataFrame
    caption: str = ""

    def markdown(self, base: Path) -> str:
        return (f"{self.caption}\n\n" if self.caption else "") + self.table.to_markdown(index=False) + "\n"

    def html(self) -> str:
        head = "".join(f"<th>{inline_html(c)}</th>" for c in self.table.columns)
        body = "".join("<tr>" + "".join(f"<td>{inline_html(v)}</td>" for v in row) + "</tr>"
                       for row in self.table.itertuples(index=False))
        cap = f"<p class='caption'>{inline_html(self.caption)}</p>" if self.caption else ""
        return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Figure:
    path: Path
    caption: str

    def markdown(self, base: Path) -> str:
        return f"![{self.path.stem}]({Path(os.path.relpath(self.path, base)).as_posix()})\n\n*{self.caption}*\n"

    def html(self) -> str:
        return f"<figure>{_embedded(self.path)}<figcaption>{inline_html(self.caption)}</figcaption></figure>"


Block = Heading | Paragraph | Bullets | Table | Figure


@dataclass
class Document:
    """Blocks in order; `markdown` and `html` render them."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(Heading(text, level))

    def paragraph(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(Bullets(list(items)))

    def table(self, table: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(Table(table, caption))

    def figure(self, path: Path, caption: str) -> None:
        self.blocks.append(Figure(Path(path), caption))

    def markdown(self, base: Path) -> str:
        """Markdown with figure links relative to ``base`` (the folder it is written to)."""
        return "\n".join([f"# {self.title}\n", *(b.markdown(base) for b in self.blocks)])

    def html(self) -> str:
        """One HTML file with every figure embedded (PNG or SVG; others are named only)."""
        head = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>")
        return "\n".join([head, *(b.html() for b in self.blocks), "</body></html>"])


def _embedded(path: Path) -> str:
    mime = MIME.get(path.suffix.lower())
    if mime is None or not path.exists():
        return f"<p>[figure: {html.escape(path.name)}]</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(path.name)}' src='data:{mime};base64,{data}'>"
