"""The one command line of the analysis commands that redraw a sweep's tables and figures."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import store
from cli import Parser, add_out_arg, clean_exit, fail

Report = Callable[[Path, "Path | None", bool, str], "str | None"]


def report_command(prog: str, description: str, report: Report, argv: list[str] | None = None) -> int:
    """``prog RESULTS [--out DIR] [--no-figures]``: ``report(results, out, figures, prog)``
    returns the markdown to print, or None when there are no records (exit 2, one line)."""
    p = Parser(prog=prog, description=description)
    p.add_argument("results", type=Path, help="results root, a sweep's directory, or one setting's directory")
    add_out_arg(p, None, "write tables and figures under OUT/<setting>/ instead of beside the records")
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
        text = report(args.results, args.out, not args.no_figures, p.prog)
    if text is None:
        fail(p.prog, f"no records of this kind below {args.results}")
    print(text)
    return 0


def check_output_file(path: Path) -> None:
    """Raise ``PermissionError`` unless a file (a figure) can be written at ``path``."""
    if Path(path).is_dir():
        raise PermissionError(f"{path} is a directory; give a file name such as {Path(path) / 'figure.png'}")
    store.ensure_writable(Path(path).parent)
