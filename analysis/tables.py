"""Writing a table three ways: markdown (to read, with its caption above), LaTeX (to paste,
caption inside), CSV (the numbers, for anyone's own analysis). One writer for every
analysis command, so captions, escaping and the ``mean ± std`` cell look the same everywhere.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

import store


def latex_escape(text: str) -> str:
    """Plain text for LaTeX: ``_ % # & ± × ≥ ≤ < >`` made safe, ``x^2``/``x²`` a superscript,
    ``**bold**`` ``\\textbf{}``."""
    out = str(text).replace("\\", r"\textbackslash{}")
    for a, b in (("_", r"\_"), ("%", r"\%"), ("#", r"\#"), ("&", r"\&"), ("²", "^2"), ("±", r"$\pm$"),
                 ("×", r"$\times$"), ("≥", r"$\geq$"), ("≤", r"$\leq$"), (">=", r"$\geq$"), ("<=", r"$\leq$"),
                 (">", "$>$"), ("<", "$<$")):
        out = out.replace(a, b)
    out = re.sub(r"\^(\w+)", r"$^{\1}$", out)
    while out.count("**") >= 2:
        out = out.replace("**", r"\textbf{", 1).replace("**", "}", 1)
    return out


def numbers(mean: float, std: float, fmt: str = ".2f") -> tuple[str, str]:
    """``mean`` and ``std`` as text in ``fmt``; a ``g`` format (values spanning decades)
    means that many significant digits of the mean, with the std to the same decimal place
    (scientific notation below 1e-3), so the two always read alike."""
    if not fmt.endswith("g"):
        return f"{mean:{fmt}}", f"{std:{fmt}}"
    digits = int(fmt.strip(".g") or 2)
    if mean != 0 and abs(mean) < 1e-3:
        return f"{mean:.{digits - 1}e}", f"{std:.{digits - 1}e}"
    places = max(0, digits - 1 - math.floor(math.log10(abs(mean)))) if mean != 0 else digits
    return f"{mean:.{places}f}", f"{std:.{places}f}"


def pm(mean: float, std: float, fmt: str = ".2f", scale: float = 1.0) -> str:
    """``"0.83 ± 0.05"`` (see `numbers`); the value alone without a spread; ``"n/a"`` without a value."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    has_std = std is not None and math.isfinite(std)
    m, s = numbers(mean * scale, std * scale if has_std else 0.0, fmt)
    return m + (f" ± {s}" if has_std else "")


def to_markdown(table: pd.DataFrame, caption: str, comment: str = "") -> str:
    """The caption, a blank line, the table (no index), then ``comment`` as HTML comment
    lines (unseen when rendered)."""
    hidden = "".join(f"<!-- {line.replace('--', '- -')} -->\n" for line in comment.splitlines())
    return f"{caption}\n\n{table.to_markdown(index=False)}\n{hidden}"


WIDE_COLUMNS = 6  # a LaTeX table with more columns spans both columns of a two-column paper (table*)


def to_latex(table: pd.DataFrame, caption: str, label: str, lead: int = 1, comment: str = "") -> str:
    """A LaTeX table with booktabs rules (``\\usepackage{booktabs}``): the first ``lead``
    columns left-aligned, the rest right-aligned; ``table*`` when it has more than
    `WIDE_COLUMNS` columns; ``comment`` (e.g. the setting's directory name, which a caption
    should not carry) as ``%`` lines above it."""
    tex = table.copy()
    tex.columns = [latex_escape(c) for c in tex.columns]
    tex = tex.map(latex_escape)
    body = tex.to_latex(index=False, escape=False, caption=latex_escape(caption), label=label,
                        column_format="l" * lead + "r" * (len(tex.columns) - lead))
    if len(tex.columns) > WIDE_COLUMNS:
        body = body.replace("\\begin{table}", "\\begin{table*}", 1).replace("\\end{table}", "\\end{table*}", 1)
    return "".join(f"% {line}\n" for line in comment.splitlines()) + body


def write_table(table: pd.DataFrame, numbers: pd.DataFrame | None, directory: Path, stem: str, caption: str,
                lead: int = 1, comment: str = "") -> str:
    """``stem.md``, ``stem.tex`` (from the display ``table``, ``comment`` above each: an HTML
    comment, ``%`` lines) and ``stem.csv`` (from ``numbers``, when given) under ``directory``,
    each written atomically; returns the markdown."""
    markdown = to_markdown(table, caption, comment)
    store.write_text(directory / f"{stem}.md", markdown)
    store.write_text(directory / f"{stem}.tex", to_latex(table, caption, f"tab:{stem}", lead, comment))
    if numbers is not None:
        store.write_text(directory / f"{stem}.csv", numbers.to_csv(index=False))
    return markdown
