"""The one command line of the analysis commands that redraw a sweep's tables and figures."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import store
from cli import Parser, clean_exit, fail
from cli.options import add_options

Report = Callable[..., "str | None"]  # report(results, out, figures, prog, formats=...)


def report_command(prog: str, description: str, report: Report, argv: list[str] | None = None) -> int:
    """``prog RESULTS [--out DIR] [--format png,pdf] [--no-figures]``: ``report(results, out,
    figures, prog, formats=...)`` returns the markdown to print, or None when there are no
    records (exit 2, one line)."""
    p = Parser(prog=prog, description=description)
    add_options(p, "results", "out", "format", "no_figures", shown={"out": "beside the records"},
                notes={"out": "write tables and figures under OUT/<setting>/"})
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
