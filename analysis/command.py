"""The one command line of the analysis commands that redraw a sweep's tables and figures."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import store
from analysis.figures import DEFAULT_FORMATS, FORMATS
from cli import Parser, UsageError, add_out_arg, clean_exit, fail, parse_names

Report = Callable[..., "str | None"]  # report(results, out, figures, prog, formats=...)


def parse_formats(text: str) -> tuple[str, ...]:
    """``"png,pdf"`` -> ("png", "pdf"); every entry must be a figure format we write."""
    formats = tuple(f.lower().lstrip(".") for f in parse_names(text, "--format"))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(f"unknown figure format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return formats


def _format_type(text: str) -> tuple[str, ...]:
    """`parse_formats` as an argparse type: a bad list becomes the parser's one-line error."""
    try:
        return parse_formats(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_format_arg(parser: argparse.ArgumentParser) -> None:
    """``--format``, parsed into a tuple of formats (``args.format``)."""
    parser.add_argument("--format", type=_format_type, default=",".join(DEFAULT_FORMATS),
                        help=f"figure formats, a comma list of {', '.join(FORMATS)} "
                             f"(default {','.join(DEFAULT_FORMATS)}: PNG to look at, PDF (vector) for a paper)")


def report_command(prog: str, description: str, report: Report, argv: list[str] | None = None) -> int:
    """``prog RESULTS [--out DIR] [--format png,pdf] [--no-figures]``: ``report(results, out,
    figures, prog, formats=...)`` returns the markdown to print, or None when there are no
    records (exit 2, one line)."""
    p = Parser(prog=prog, description=description)
    p.add_argument("results", type=Path, help="results root, a sweep's directory, or one setting's directory")
    add_out_arg(p, None, "write tables and figures under OUT/<setting>/ instead of beside the records")
    add_format_arg(p)
    p.add_argument("--no-figures", action="store_true", help="tables only")
    args = p.parse_args(argv)
    if not args.results.exists():
        fail(p.prog, f"{args.results} does not exist")
    try:
        if args.out is not None:
            store.ensure_writable(args.out)
    except PermissionError as err:
        fail(p.prog, str(err))
    with clean_exit(p.prog):
        text = report(args.results, args.out, not args.no_figures, p.prog, formats=args.format)
    if text is None:
        fail(p.prog, f"no records of this kind below {args.results}")
    print(text)
    return 0


def check_output_file(path: Path) -> None:
    """Raise ``PermissionError`` unless a file (a figure) can be written at ``path``."""
    if Path(path).is_dir():
        raise PermissionError(f"{path} is a directory; give a file name such as {Path(path) / 'figure.png'}")
    store.ensure_writable(Path(path).parent)
