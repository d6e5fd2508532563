"""The command-line options: one table (`cli.options.OPTIONS`) that every parser reads, checks
at parse time (one line, exit 2), ``--steps`` with one meaning, the paper's settings in one
place, no environment written outside an entry point's ``main``, and answers (``--help``, bad
input) before torch is imported."""
import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cli import Parser
from cli.options import OPTIONS, add_options

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["sweeps.stability", "sweeps.fid", "sweeps.train", "sweeps.bench", "sweeps.rescore", "analysis.stability",
            "analysis.fid_table", "analysis.process", "analysis.traces", "analysis.report", "analysis.curves"]


def run_python(*args: str) -> subprocess.CompletedProcess:
    """``python -X importtime ARGS`` from the repository root: stderr lists every import."""
    return subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120, check=False)


def imports_torch(res: subprocess.CompletedProcess) -> bool:
    return any(line.split("|")[-1].strip() == "torch" for line in res.stderr.splitlines() if "|" in line)


def messages(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in res.stderr.splitlines() if not line.startswith("import time:")]


@pytest.mark.parametrize("module", COMMANDS)
def test_help_comes_before_torch(module):
    res = run_python("-m", module, "--help")
    assert res.returncode == 0 and "usage:" in res.stdout, messages(res)
    assert not imports_torch(res)


@pytest.mark.parametrize("module", ["sweeps.stability", "sweeps.fid", "sweeps.train", "sweeps.bench"])
@pytest.mark.parametrize("args, message", [
    (["--models", "gramm"], "unknown model gramm; choose from gan, mmdnet, mmdgan, gram, wgangp"),
    (["--threads", "0"], "--threads must be in 1..1024, got 0"),
    (["--devices", "gpu"], "--devices has unknown device 'gpu'"),
])
def test_bad_input_is_one_line_before_torch(module, args, message):
    res = run_python("-m", module, *args)
    lines = messages(res)
    assert res.returncode == 2 and len(lines) == 1 and message in lines[0], lines
    assert lines[0].startswith(f"python -m {module}: error:")
    assert not imports_torch(res)


def parser_of(*names: str, **kwargs) -> Parser:
    p = Parser(prog="test")
    add_options(p, *names, **kwargs)
    return p


def refused(parser: Parser, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps must be a positive integer, got 0"),
    (["--steps", "x"], "argument --steps: invalid int value: 'x'"),
    (["--widths", ""], "--widths is empty"),
    (["--widths", "20,0"], "--widths values must be at least 1, got 0"),
    (["--seeds", "1,a"], "expects comma-separated integers, got '1,a'"),
    (["--eval-every", "-1"], "--eval-every must be >= 0, got -1"),
    (["--checkpoint-minutes", "nan"], "--checkpoint-minutes must be a number >= 0, got nan"),
    (["--jobs", "2000"], "--jobs must be in 1..1024, got 2000"),
    (["--devices", "cpu,cuda:0"], "--devices mixes cpu and cuda devices"),
    (["--devices", "cuda:x"], "--devices has unknown device 'cuda:x'"),
    (["--grid", "seed=1,2"], "--grid cannot sweep seed: use --seeds"),
    (["--grid", "df"], "expects KEY=V1,V2,..., got 'df'"),
    (["--set", "lr"], "expects KEY=VALUE, got 'lr'"),
    (["--format", "png,jpg"], "unknown figure format jpg"),
    (["--models", "gan,vae"], "unknown model vae; choose from gan, mmdnet, mmdgan, gram, wgangp or all"),
])
def test_checks_run_at_parse_time(argv, message, capsys):
    p = parser_of("steps", "widths", "seeds", "eval_every", "checkpoint_minutes", "jobs", "devices", "grid", "set",
                  "format", "models")
    line = refused(p, argv, capsys)
    assert line.startswith("test: error:") and message in line, line


def test_values_are_parsed_once_and_one_takes_a_single_value(capsys):
    p = parser_of("models", "seeds", "widths", "devices", "grid", "set", "format", "cell", one=("seeds", "devices"))
    args = p.parse_args(["--models", "all", "--seeds", "3", "--widths", "20,100,20", "--grid", "df=2,4,2",
                         "--set", "lr=1e-3", "--format", "PDF"])
    assert args.models == ["gan", "mmdnet", "mmdgan", "gram", "wgangp"]
    assert args.seeds == 3 and args.devices == "cpu" and args.widths == [20, 100, 20]
    assert args.grid == [("df", [2, 4])] and args.set == [("lr", 1e-3)] and args.format == ("pdf",)
    assert args.cell == []  # a repeatable option given never is an empty list
    assert "--seeds takes one value here" in refused(p, ["--seeds", "1,2"], capsys)
    assert "one value here" in p.format_help()


def test_a_plugin_named_after_models_still_counts(isolated_registry, tmp_path):
    """--models is resolved after every --plugin is loaded, wherever it stands."""
    plugin = ROOT / "examples" / "lsgan.py"
    args = parser_of("models", "plugin").parse_args(["--models", "gan,lsgan", "--plugin", str(plugin)])
    assert args.models == ["gan", "lsgan"] and args.plugin == (str(plugin.resolve()),)


def test_a_command_default_and_help_come_from_the_one_definition():
    p = parser_of("seeds", "steps", defaults={"seeds": "0,1,2"}, shown={"steps": "the preset's"})
    args = p.parse_args([])
    assert args.seeds == [0, 1, 2] and args.steps is None
    text = " ".join(p.format_help().split())
    assert "(default 0,1,2)" in text and "(default the preset's)" in text


def every_parser() -> dict[str, argparse.ArgumentParser]:
    from sweeps import bench, train
    from sweeps.fid import FidSweep
    from sweeps.rescore import build_parser as rescore
    from sweeps.stability import StabilitySweep
    return {"sweeps.stability": StabilitySweep().build_parser(), "sweeps.fid": FidSweep().build_parser(),
            "sweeps.train": train.build_parser(), "sweeps.bench": bench.build_parser(), "sweeps.rescore": rescore()}


def test_every_option_of_every_parser_is_in_the_table():
    flags = {f: name for name, o in OPTIONS.items() for f in o.flags}
    assert len(flags) == sum(len(o.flags) for o in OPTIONS.values()), "a flag defined twice"
    for command, parser in every_parser().items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert all(flags.get(f) == action.dest for f in action.option_strings), (command, action.dest)


def test_steps_is_the_training_length_everywhere():
    """Which snapshots, and how many timed steps, have names of their own."""
    parsers = every_parser()
    assert "--steps" in parsers["sweeps.train"]._option_string_actions
    assert "--steps" not in parsers["sweeps.bench"]._option_string_actions
    assert "--timed-steps" in parsers["sweeps.bench"]._option_string_actions
    source = (ROOT / "analysis" / "process.py").read_text()
    assert '"snapshot_steps"' in source and '"--steps"' not in source


def test_the_paper_settings_have_one_home():
    from analysis import claims
    from core import paper
    from engine import field_default
    from sweeps.fid import FidSweep
    from sweeps.stability import StabilitySweep
    full = StabilitySweep().presets["full"].values  # from the experiment files
    assert (full["noise_dims"], full["widths"]) == ([2, 4, 8, 16], [20, 100, 200])
    assert tuple(full["noise_dims"]) == paper.RING_GRID["noise_dim"] and full["steps"] == paper.RING_STEPS == 10_500
    assert full["batch"] == paper.RING_BATCH == field_default("batch") and field_default("steps") == paper.RING_STEPS
    assert claims.PAPER_GRID is paper.RING_GRID and claims.PAPER_STEPS == paper.RING_STEPS
    assert {(p.values["batch"], p.values["noise_dims"][0]) for p in FidSweep().presets.values()} == {(64, 128)}
    assert (paper.IMAGE_BATCH, paper.IMAGE_NOISE_DIM) == (64, 128)


def test_the_builtin_names_are_the_registered_builtins():
    import objectives
    builtins = [n for n in objectives.names() if objectives.get(n).__module__.startswith("objectives.")]
    assert builtins == list(objectives.BUILTINS)


def environment_writes(path: Path) -> list[str]:
    """``file:line`` of each write to the environment outside a function named ``main``."""
    tree, hits = ast.parse(path.read_text()), []
    mains = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "main" for n in ast.walk(f)}
    for node in ast.walk(tree):
        text = ast.unparse(node) if isinstance(node, (ast.Assign, ast.Call)) else ""
        if id(node) not in mains and ("putenv(" in text or "environ.setdefault(" in text
                                      or "environ.update(" in text or text.startswith("os.environ[")):
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


def test_only_an_entry_points_main_writes_the_environment():
    packages = ["cli", "core", "data", "models", "objectives", "engine", "metrics", "store", "analysis", "sweeps"]
    assert [h for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py")) for h in environment_writes(p)] == []
