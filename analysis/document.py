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
class Document:
    """Blocks in order; `markdown` and `html` render them."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("bullets", list(items)))

    def table(self, table: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(("table", table, caption))

    def figure(self, path: Path, caption: str) -> None:
        self.blocks.append(("figure", Path(path), caption))

    def markdown(self, base: Path) -> str:
        """Markdown with figure links relative to ``base`` (the folder it is written to)."""
        out = [f"# {self.title}\n"]
        for kind, *args in self.blocks:
            if kind == "heading":
                out.append(f"{'#' * args[0]} {args[1]}\n")
            elif kind == "paragraph":
                out.append(f"{args[0]}\n")
            elif kind == "bullets":
                out.append("\n".join(f"- {item}" for item in args[0]) + "\n")
            elif kind == "table":
                table, caption = args
                out.append((f"{caption}\n\n" if caption else "") + table.to_markdown(index=False) + "\n")
            elif kind == "figure":
                path, caption = args
                out.append(f"![{path.stem}]({Path(os.path.relpath(path, base)).as_posix()})\n\n*{caption}*\n")
        return "\n".join(out)

    def html(self) -> str:
        """One HTML file with every figure embedded (PNG or SVG; others are linked by name)."""
        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
               f"<style>{STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"]
        for kind, *args in self.blocks:
            if kind == "heading":
                out.append(f"<h{args[0]}>{inline_html(args[1])}</h{args[0]}>")
            elif kind == "paragraph":
                out.append(f"<p>{inline_html(args[0])}</p>")
            elif kind == "bullets":
                out.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in args[0]) + "</ul>")
            elif kind == "table":
                table, caption = args
                head = "".join(f"<th>{inline_html(c)}</th>" for c in table.columns)
                body = "".join("<tr>" + "".join(f"<td>{inline_html(v)}</td>" for v in row) + "</tr>"
                               for row in table.itertuples(index=False))
                cap = f"<p class='caption'>{inline_html(caption)}</p>" if caption else ""
                out.append(f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "figure":
                path, caption = args
                out.append(f"<figure>{_embedded(path)}<figcaption>{inline_html(caption)}</figcaption></figure>")
        out.append("</body></html>")
        return "\n".join(out)


def _embedded(path: Path) -> str:
    mime = MIME.get(path.suffix.lower())
    if mime is None or not path.exists():
        return f"<p>[figure: {html.escape(path.name)}]</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(path.name)}' src='data:{mime};base64,{data}'>"
