"""Rescore stored runs without retraining, and rewrite their tables.

    python -m sweeps.rescore results/ --fid-weights ~/weights/weights-inception-2015-12-05-6726825d.pth
    python -m sweeps.rescore results/fid --features offline --kid-subset-size 500
    python -m sweeps.rescore results/stability            # ring metrics again (after a metrics change)
    python -m sweeps.rescore results/fid --samples 20000  # 20,000 fresh samples from each generator

Every finished (``ok``) record below RESULTS is scored again by the evaluation that
scores runs when they finish training (`sweeps.worker.EvaluateImages`,
`sweeps.worker.EvaluateSamples`): image records with the feature extractor the options
name (the same options as `sweeps.fid`; FID, KID, precision, recall and IS where
meaningful), toy records with the ring metrics. The samples are the record's stored ones,
or with ``--samples N`` N samples drawn from its stored generator
(`sweeps.reuse.load_generator`; the first ``n_samples`` of them are the stored ones).
Each record's ``metrics`` and ``scoring`` are replaced atomically through the store
(`store.update`): its data files and checksums stay as they are, and
``scoring`` says when and by what command it was rescored (``rescored``) and, for runs with
``metrics_over_steps.csv``, which extractor scored those curves during training
(``over_steps``: rescoring cannot score past generators). Then the FID and stability
tables and figures are rebuilt (`analysis.fid_table`, `analysis.stability`).

With the extractor a record was scored with (and one torch thread, the default), the
rescored numbers equal the stored ones exactly.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import store
from analysis import fid_table, stability
from analysis.frames import scan
from cli import Parser, UsageError, check_device, clean_exit, fail
from cli.options import add_options
from sweeps.inputs import data_root_env, image_scoring, open_dataset


def build_parser() -> Parser:
    p = Parser(prog="python -m sweeps.rescore", description=__doc__.split("\n\n")[0],
               epilog="See the module docstring (python -c 'import sweeps.rescore; help(sweeps.rescore)').")
    add_options(p, "results", "features", "fid_weights", "extractor_epochs", "kid_subset_size", "cache_dir",
                "data_root", "download", "samples", "devices", "threads", "no_figures", one=("devices",),
                shown={"cache_dir": "RESULTS/fid/cache, next to the sweeps' own", "samples": "the stored ones"},
                notes={"results": "or one record's", "samples": "here: draw this many from each stored generator "
                                                                "and score them instead of the stored samples",
                       "no_figures": "rewrite the tables only"})
    return p


def default_cache(results: Path) -> Path:
    """``<root>/fid/cache`` of the results root above ``results`` (where `sweeps.fid` keeps it)."""
    here = results.resolve()
    for d in (here, *here.parents):
        if d.name == "fid":
            return d / "cache"
        if (d / "fid").is_dir():
            return d / "fid" / "cache"
    return here / "fid" / "cache"


def samples_of(record: store.Record, n: int | None, device: str) -> np.ndarray:
    """The record's stored samples, or ``n`` fresh ones from its generator."""
    from sweeps.reuse import load_generator
    return store.load_samples(record.path) if n is None else load_generator(record.path, device).sample(n)


def rescore(records: list[store.Record], args: argparse.Namespace) -> list[tuple[store.Record, dict[str, Any]]]:
    """Score every record again and store the result; returns (record as it was, new metrics)."""
    datasets: dict[str, Any] = {}
    from sweeps.worker import EvaluateImages, Evaluator, evaluate_samples  # torch: after the arguments are read
    evaluators: dict[str, Evaluator] = {}
    cache = args.cache_dir or default_cache(args.results)
    for r in records:  # every data set and extractor is checked before any record changes
        name = r.config["dataset"]
        if name not in datasets:
            datasets[name] = open_dataset(name, args.data_root, args.download)
            evaluators[name] = evaluate_samples
            if datasets[name].kind == "image":
                store.ensure_writable(cache)
                evaluators[name] = EvaluateImages(image_scoring(args, datasets[name], store.dataset_dir(name), cache))
    provenance = store.provenance()
    done = []
    for r in tqdm(records, desc="rescoring", unit="run", file=sys.stderr):
        name = r.config["dataset"]
        evaluation = evaluators[name].score(samples_of(r, args.samples, args.devices), datasets[name], r.seed,
                                            args.devices)
        scoring = {**evaluation.scoring, "rescored": provenance,
                   "samples": "stored" if args.samples is None else f"{args.samples} drawn from generator.pt"}
        if store.load_curves(r.path) is not None:
            scoring["over_steps"] = r.scoring.get("over_steps") or {k: r.scoring[k] for k in
                                                                    ("features", "features_key") if k in r.scoring}
        store.update(r.path, metrics=evaluation.metrics, scoring=scoring)
        done.append((r, evaluation.metrics))
    return done


def summary(done: list[tuple[store.Record, dict[str, Any]]]) -> str:
    """How far the new numbers are from the stored ones, per metric."""
    lines = [f"rescored {len(done)} run(s)"]
    keys = dict.fromkeys(k for _, m in done for k in m)
    for k in keys:
        diffs = [abs(float(m[k]) - float(r.metrics[k])) for r, m in done
                 if k in r.metrics and r.metrics[k] is not None and isinstance(m.get(k), (int, float))]
        if diffs:
            lines.append(f"  {k}: largest change {max(diffs):.6g} over {len(diffs)} run(s) that had it")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.update(data_root_env(args.data_root))  # the stored generators open their data sets by name
    with clean_exit(parser.prog, "; records rescored so far keep their new metrics, the others their old"):
        try:
            if not args.results.exists():
                raise UsageError(f"{args.results} does not exist")
            args.devices = str(check_device(args.devices))
            records = [r for r in scan(args.results, parser.prog)[0] if r.status == "ok"]
            if not records:
                raise UsageError(f"no finished records below {args.results}")
            import torch
            torch.set_num_threads(args.threads)
            if args.samples is not None:  # their generators are rebuilt: the plugins they trained with load first
                from sweeps.reuse import load_plugins_of
                for r in records:
                    try:
                        load_plugins_of(r)
                    except (FileNotFoundError, ImportError) as err:
                        raise UsageError(str(err)) from None
            done = rescore(records, args)
        except (UsageError, PermissionError) as err:
            fail(parser.prog, str(err))
        print(summary(done), file=sys.stderr)
        for report in (fid_table.report, stability.report):
            text = report(args.results, None, not args.no_figures, parser.prog)
            if text:
                print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
