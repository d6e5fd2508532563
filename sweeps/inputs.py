"""What the commands that train or score samples open before any work (`sweeps.fid`,
`sweeps.train`, `sweeps.bench`, `analysis.rescore`): data sets, loaded now so a missing one
fails with one line, and the image scoring that the feature options ask for.

The data root is passed to the data sets here; an entry point whose worker processes open
data sets by name puts it in their environment itself (`data_root_env`, in its ``main``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli import UsageError


def data_root_env(root: str | None) -> dict[str, str]:
    """The environment that makes ``data.get(name)`` in worker processes find ``root``
    (``--data-root``): empty when it is not given."""
    if not root:
        return {}
    from data.images import DATA_ROOT_ENV
    return {DATA_ROOT_ENV: str(Path(root).expanduser().resolve())}


def open_dataset(name: str, root: str | None = None, download: bool = False) -> Any:
    """The data set ``name`` (image sets below ``root``), loaded now so a missing one fails
    before any work: `UsageError` naming the files expected and how to get them."""
    import data
    from data.images import DatasetMissing
    try:
        dataset = data.get(name)
        if dataset.kind == "image":
            dataset = data.get(name, root=root, download=download)
        dataset.train_set(0)
    except (DatasetMissing, KeyError) as err:
        raise UsageError(str(err).strip("'\"")) from None
    return dataset


def image_scoring(args: argparse.Namespace, dataset: Any, name: str, cache: Path) -> Any:
    """The `metrics.images.ImageScoring` of ``dataset`` (directory name ``name``) that the
    feature options (``--features``, ``--fid-weights``, ``--extractor-epochs``,
    ``--kid-subset-size``) ask for; an unusable extractor is a `UsageError`."""
    from metrics.images import FeatureError, OfflineConfig, dataset_scoring
    offline = OfflineConfig() if args.extractor_epochs is None else OfflineConfig(epochs=args.extractor_epochs)
    try:
        return dataset_scoring(dataset, name, args.features, args.fid_weights, cache, offline, args.kid_subset_size,
                               log=lambda msg: print(msg, file=sys.stderr))
    except FeatureError as err:
        raise UsageError(str(err)) from None
