"""Train one run of one objective and store everything about it.

    python -m sweeps.train --models gram --dataset ring2d --noise-dims 4 --widths 100 --steps 3000 --seed 0

A single run goes through the sweeps' one worker (`sweeps.worker.run_task`) as a stack of
one: its record is written like a sweep cell's (`store.records`), at a path made from its
configuration, ``<out>/train/<setting>/<dataset>/<objective>_<hp>/default/seed<k>/`` (the
last line printed names it), so runs of different configurations never share a folder
and a rerun of the same configuration reuses its finished record (``--force`` trains it
again). A crash is recorded as ``crashed`` with its traceback (exit code 1) and retried
by the next run. Besides the record's files (per-step diagnostics CSV, generator
weights, 10,000 samples, metrics, the complete configuration) the run draws
``samples.png`` (samples over data), ``trace.png`` (the per-step diagnostics,
`analysis.traces`) and, with ``--snapshot-steps``, ``process.png`` (data and projected
space over training, `analysis.process`), then prints the ring metrics.

A long run writes a checkpoint every ``--checkpoint-minutes`` (default 10) in its
setting's ``.checkpoints/`` (`store.stack_checkpoint`); rerunning the same command after
a kill resumes from it and ends with the same samples as a run never stopped.
``--eval-every N`` stores the ring metrics over training steps
(``metrics_over_steps.csv``, drawn as ``metrics_over_steps.png``) and ``--tensorboard`` a
live view (see `sweeps.longrun`).

``--from PATH/record.json`` trains exactly the run a record describes (any command's: its
complete configuration, hyperparameters, steps, seed and all) with the current code, into
``--out`` like any single run; a record made by other code (another objective version or
source digest, another engine version) is named in one line on stderr, and so is a record
trained in a stack of several runs, which a run alone matches only up to float rounding.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli import Parser, UsageError, check_device, clean_exit, fail
from cli.options import OPTIONS, add_options, given_options

if TYPE_CHECKING:
    import pandas as pd

    import store
    from engine import RunConfig, RunOutcome
    from sweeps.longrun import LongRun

SWEEP = "train"  # the records' sweep and the folder below --out that holds them
RUN_OPTIONS = {"models": "model", "dataset": "dataset", "arch": "arch", "noise_dims": "noise_dim", "widths": "width",
               "depth": "depth", "steps": "steps", "batch": "batch", "seeds": "seed", "noise": "noise",
               "samples": "n_samples", "ema": "ema"}  # option -> RunConfig field


def build_parser() -> Parser:
    p = Parser(prog="python -m sweeps.train", description=__doc__.split("\n\n")[0],
               epilog="Hyperparameters default to the paper's per objective and data kind "
                      "(see objectives/*.py); override any with --set KEY=VALUE.")
    add_options(p, *RUN_OPTIONS, "set", "from", "snapshot_steps", "devices", "threads", "data_root", "download", "out",
                "plugin", "checkpoint_minutes", "checkpoint_steps", "eval_every", "eval_samples", "tensorboard",
                "log_every", "images_every", "force", one=("models", "dataset", "arch", "noise_dims", "widths", "seeds",
                                                  "devices"),
                defaults={"out": Path("results")},
                notes={"out": f"the results root; the record goes to OUT/{SWEEP}/<setting>/<dataset>/"
                                       "<objective>_<hp>/default/seed<k>/, a folder of its configuration's own"})
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Validate the arguments into a `RunConfig` (unset options: its defaults); bad input
    raises `UsageError`."""
    from engine import RunConfig
    given = {field: getattr(args, option) for option, field in RUN_OPTIONS.items() if getattr(args, option) is not None}
    try:
        return RunConfig(**given, hp=tuple(args.set))
    except ValueError as err:
        raise UsageError(str(err)) from None


def config_from_record(path: Path) -> RunConfig:
    """The configuration the record at ``path`` (its record.json or its folder) describes, to
    train with the current code; `UsageError` when there is no readable record. Says on
    stderr, in one line each, when the record's code versions differ from the current code's
    and when it was trained in a stack of several runs."""
    import store
    from engine import RunConfig
    from store.records import RECORD_FILE
    folder = path.parent if path.name == RECORD_FILE else path
    try:
        record = store.read(folder, verify=False)  # its configuration is all it takes; its files may be gone
        cfg = RunConfig.from_dict(record.config)
    except FileNotFoundError:
        raise UsageError(f"--from: no record at {path}") from None
    except (store.DamagedRecord, ValueError, TypeError) as err:
        raise UsageError(f"--from {path}: {err}") from None
    changed = [f"{name} {record.config.get(name)!r}, now {getattr(cfg, name)!r}"
               for name in ("objective_version", "objective_digest", "engine_version")
               if record.config.get(name) != getattr(cfg, name)]
    if changed:
        print(f"warning: {path} was trained by other code ({'; '.join(changed)}): this run may differ from it",
              file=sys.stderr)
    members = len(record.run.get("stack", {}).get("members", []))
    if members > 1:
        print(f"note: {path} was trained in a stack of {members} runs; this run alone agrees with it up to float "
              "rounding", file=sys.stderr)
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    fixed = [OPTIONS[k].flag for k in given_options(parser, argv) if k in (*RUN_OPTIONS, "set")]
    if getattr(args, "from") is not None and fixed:
        parser.error(f"--from trains the record's configuration; {', '.join(fixed)} cannot change it")
    from sweeps.inputs import data_root_env
    os.environ.update(data_root_env(args.data_root))  # the engine opens the data set by name
    with clean_exit(parser.prog, "; nothing was recorded"):
        return run(parser, args)


def draw_figures(outcome: RunOutcome, dataset: Any, curves: pd.DataFrame | None, folder: Path) -> None:
    """A single run's figures, drawn into its record's ``folder`` (`sweeps.worker.Figures`)
    as PNG and PDF: samples (toy data), trace, process when snapshots were taken and
    metrics_over_steps with ``--eval-every``; titled by the objective's display name and the
    data set's name in words. A figure that fails to draw is reported, never allowed to lose
    the trained run."""
    import objectives
    import store
    from analysis.curves import save_curves
    from analysis.figures import DEFAULT_FORMATS, save_scatter
    from analysis.process import config_title, save_process
    from analysis.traces import write_traces
    from metrics.ring import reference_samples
    cfg = outcome.config
    described = objectives.get(cfg.model).describe()
    title = config_title(cfg.to_dict(), described["display_name"])
    try:
        if dataset.kind == "toy":
            ref = reference_samples(dataset, cfg.seed, 2_000)
            save_scatter(folder / "samples.png", ref, outcome.samples, f"{title}, step {cfg.steps}", DEFAULT_FORMATS)
        write_traces([(title, store.load_trace(folder), described)], folder / "trace.png", formats=DEFAULT_FORMATS)
        if outcome.snapshots:
            save_process(folder, folder / "process.png", snaps=outcome.snapshots, title=title, formats=DEFAULT_FORMATS)
        if curves is not None and len(curves):
            save_curves([(title, curves)], folder / "metrics_over_steps.png", formats=DEFAULT_FORMATS)
    except Exception as err:  # noqa: BLE001 - the record matters more than its pictures
        print(f"warning: could not draw a figure: {type(err).__name__}: {err}", file=sys.stderr)


def lacking(record: Path, snapshot_steps: list[int], options: LongRun) -> list[str]:
    """The options of this command whose outputs the finished record at ``record`` lacks
    (snapshots at other steps, no metrics over steps at this interval, no live view): they
    are not part of a configuration, so asking for them trains the run again."""
    import store
    missing = []
    if snapshot_steps:
        try:
            stored = store.load_snapshots(record)["steps"].tolist()
        except FileNotFoundError:
            stored = []
        if stored != sorted(set(snapshot_steps)):
            missing.append("--snapshot-steps")
    run = store.read(record).run
    if options.eval_every and (run.get("eval_every"), run.get("eval_samples")) != (options.eval_every,
                                                                                    options.eval_samples):
        missing.append("--eval-every")
    if options.tensorboard and not (record / "tensorboard").is_dir():
        missing.append("--tensorboard")
    return missing


def summary(record: store.Record) -> str:
    """What the run printed when it finished: status, time, ring metrics, the record's path."""
    import store
    line = f"status: {record.status}" + (f": {record.reason}" if record.reason else "")
    wall = record.run.get("wall_time_s")
    if record.finished and wall is not None:
        steps = len(store.load_trace(record.path))
        line += f"; {wall:.1f} s, {1e3 * wall / max(1, steps):.2f} ms/step"
    lines = [line]
    m = record.metrics
    if "modes_covered" in m:
        lines.append(f"modes covered: {m['modes_covered']}/{m['n_modes']}  high-quality: {m['hq_fraction']:.3f}  "
                     f"mode KL: {m['mode_kl']:.3f}  MMD^2: {m['mmd2']:.4f}  success: {m['success']}")
    return "\n".join([*lines, f"record: {record.path}"])


def run(parser: Parser, args: argparse.Namespace) -> int:
    """Check everything (nothing is written before), then reuse the configuration's finished
    record or train and record it through the sweeps' worker; print the summary."""
    import torch
    from tqdm import tqdm

    import store
    from sweeps.inputs import open_dataset
    from sweeps.longrun import long_run_from_args
    from sweeps.parallel import crash_exit_code
    from sweeps.worker import Cell, evaluate_samples, run_task, stack_tasks
    try:
        source = getattr(args, "from")  # a keyword: --from's attribute has no dotted name
        device = check_device(args.devices)
        cfg = config_from_record(source) if source is not None else config_from_args(args)
        cfg = cfg.replace(device=device.type)  # the device kind is part of the run's identity
        device = str(device)
        snaps = args.snapshot_steps or []
        if any(s > cfg.steps for s in snaps):
            raise UsageError(f"--snapshot-steps must lie in 0..{cfg.steps}")
        options = long_run_from_args(args)
        store.ensure_writable(args.out)
        cell = Cell(cfg, (), store.sweep_dir(args.out, SWEEP, cfg.to_dict(), {}))
        store.check_names(cell.path)
        dataset = open_dataset(cfg.dataset, args.data_root, args.download)
        if options.eval_every and dataset.kind != "toy":
            raise UsageError("--eval-every scores toy data here; for FID over steps use python -m sweeps.fid with "
                             "--seeds K --eval-every N")
    except (UsageError, PermissionError, ValueError) as err:
        fail(parser.prog, str(err))
    store.clean_partial(args.out / SWEEP)  # what killed runs left
    state = store.state(cell.path, cfg.key())
    if state.startswith("damaged"):
        print(f"{cell.path}: {state}; training it again", file=sys.stderr)
    elif state == "finished" and not args.force:
        missing = lacking(cell.path, snaps, options)
        if not missing:
            print(f"{cell.path}: a finished record of this configuration; reusing it (--force trains it again)",
                  file=sys.stderr)
            print(summary(store.read(cell.path)))
            return 0
        print(f"{cell.path}: finished, but without what {', '.join(missing)} asks for; training it again",
              file=sys.stderr)
    task, = stack_tasks(SWEEP, [cell], [cell], lambda _: evaluate_samples, args.plugin, max_stack=1, long=options,
                        snapshot_steps=snaps, figures=draw_figures)
    torch.set_num_threads(args.threads)
    with tqdm(total=cfg.steps, desc=f"{cfg.model} on {cfg.dataset}", unit="step", file=sys.stderr) as bar:
        row, = run_task(task, device, progress=lambda done: bar.update(done - bar.n))
    if row["status"] != "crashed":
        print(summary(store.read(cell.path)))
    else:  # said from its row: its crash record may not have been written (a full disk)
        print(f"status: crashed: {row['reason']}")
        if store.state(cell.path, cfg.key()) == "crashed":
            print(f"record: {cell.path}")
    return crash_exit_code([row], "run")


if __name__ == "__main__":
    sys.exit(main())
