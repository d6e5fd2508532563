"""FID, KID and Inception Score of generated images, always computed by torch-fidelity.

Two feature extractors, and every number carries the label of the one that made it:

- ``inception``: torch-fidelity's Inception-v3 (``inception-v3-compat``), the standard FID.
  Its weights come from a local file (``weights=`` / ``--fid-weights``, passed through
  torch-fidelity's ``feature_extractor_weights_path``), from torch.hub's cache, or from a
  download; `resolve_features` fails with one clear message when none of these works.
- ``offline``: a small CNN classifier (`HarnessCNN`) the harness trains on the labelled
  real images and caches on disk under a hash of the data and its settings. It is
  registered with torch-fidelity as ``harness-cnn`` and plugged in through the same
  ``feature_extractor_weights_path`` option, so FID/KID go through torch-fidelity's own
  code; FID uses its 128-d penultimate layer (scaled to unit RMS on the real images, so
  FID/KID are on a unit scale), the Inception Score its logits (the
  "classifier score" usual for MNIST). Its numbers are NOT comparable with Inception FID.

Nothing read from a results folder or given on the command line can run code: the offline
weights and the real set's cached features are sealed files (`core.files.write_sealed`: a
digest header, then tensors loaded with ``weights_only=True``), a damaged one is named in
one line on stderr, discarded and rebuilt; torch-fidelity never sees the cache folder (it
caches in a private temporary folder filled from the sealed file, `_fidelity_cache`), and an
Inception weights file is loaded weights-only before torch-fidelity opens it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch_fidelity
from threadpoolctl import threadpool_limits
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from core.files import DamagedFile, file_digest, read_sealed, write_sealed

INCEPTION = "inception-v3-compat"
OFFLINE = "harness-cnn"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
FEATURES_KIND = "fid-features"  # the sealed cache of a real set's torch-fidelity features and statistics
WEIGHTS_KIND = "feature-extractor"  # the sealed weights of the offline extractor
OFFLINE_VERSION = 3  # bump when HarnessCNN or its training changes, so caches are not reused


class FeatureError(RuntimeError):
    """No usable feature extractor (one-line message naming the fix)."""


class ImageTensorDataset(Dataset):
    """uint8 images ``(N, C, H, W)`` as a torch Dataset; ``rgb`` repeats one channel to three."""

    def __init__(self, images: Tensor | np.ndarray, rgb: bool = False):
        self.images = torch.as_tensor(images)
        self.rgb = rgb and self.images.shape[1] == 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        x = self.images[i]
        return x.expand(3, *x.shape[1:]) if self.rgb else x


# --- the offline extractor ----------------------------------------------------------------

class HarnessCNN(nn.Module):
    """Three stride-2 3x3 conv layers (ReLU) -> 4x4 average pool -> 128-d features (ReLU) -> logits.

    Strided convolutions rather than conv + max-pool: 5x cheaper to evaluate on 10,000
    samples per run, for 96-97% held-out accuracy on mnist5k either way.
    """

    def __init__(self, in_channels: int, n_classes: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(4 * w * 16, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images in [-1, 1] -> (features, logits)."""
        h = self.body(x)
        return h, self.head(h)


@dataclass(frozen=True)
class OfflineConfig:
    """How the offline classifier is trained (part of its cache key)."""

    width: int = 32
    feature_dim: int = 128
    epochs: int = 8
    batch: int = 128
    lr: float = 1e-3
    val_fraction: float = 0.1
    seed: int = 0


def _as_float(x: Tensor) -> Tensor:
    return x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.float()


def train_classifier(images: Tensor, labels: Tensor, cfg: OfflineConfig = OfflineConfig(),
                     log=None) -> tuple[HarnessCNN, float]:
    """Train `HarnessCNN` on uint8 ``images`` with Adam; returns it and its held-out accuracy."""
    gen = torch.Generator().manual_seed(cfg.seed)
    n_classes = int(labels.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = HarnessCNN(images.shape[1], n_classes, cfg.width, cfg.feature_dim)
    order = torch.randperm(len(images), generator=gen)
    n_val = int(cfg.val_fraction * len(images))
    val, train = order[:n_val], order[n_val:]
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for epoch in range(cfg.epochs):
        net.train()
        for idx in train[torch.randperm(len(train), generator=gen)].split(cfg.batch):
            loss = nn.functional.cross_entropy(net(_as_float(images[idx]))[1], labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if log:
            log(f"  epoch {epoch + 1}/{cfg.epochs}: loss {loss.item():.3f}")
    net.eval()
    with torch.no_grad():
        hits = sum(int((net(_as_float(images[i]))[1].argmax(1) == labels[i]).sum()) for i in val.split(1024))
    return net, hits / max(1, n_val)


def save_tensors(path: Path, kind: str, obj: Any) -> Path:
    """Write tensors and plain data (numpy arrays as tensors) as a sealed file of ``kind``."""
    buffer = io.BytesIO()
    torch.save(_from_numpy(obj), buffer)
    return write_sealed(path, kind, buffer.getvalue())


def load_tensors(path: Path, kind: str) -> Any:
    """What `save_tensors` wrote at ``path`` (numpy arrays as they were), None when there is
    none; `DamagedFile` for anything else. Weights-only: nothing is unpickled that runs code."""
    payload = read_sealed(path, kind)
    if payload is None:
        return None
    try:
        return _to_numpy(torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True))
    except Exception as err:  # noqa: BLE001 - a foreign payload fails in many ways
        raise DamagedFile(f"cannot be read ({type(err).__name__})") from None


NDARRAY = "__ndarray__"  # how a numpy array is kept in a sealed file (weights-only loading refuses numpy)


def _from_numpy(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {NDARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, dict):
        return {k: _from_numpy(v) for k, v in obj.items()}
    return obj


def _to_numpy(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {NDARRAY}:
            return obj[NDARRAY].numpy()
        return {k: _to_numpy(v) for k, v in obj.items()}
    return obj


def load_or_discard(path: Path, kind: str) -> Any:
    """`load_tensors`, but a damaged file is named in one line on stderr and removed, so the
    caller rebuilds it (None, as when there is none)."""
    try:
        return load_tensors(path, kind)
    except DamagedFile as err:
        print(f"warning: discarding the damaged cache file {path} ({err}); rebuilding it", file=sys.stderr)
        Path(path).unlink(missing_ok=True)
        return None


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:60] or "data"


def offline_weights(dataset: Any, cache_dir: Path, cfg: OfflineConfig = OfflineConfig(),
                    log=None) -> Path:
    """The offline extractor's weights file for ``dataset``, trained first if not cached.

    The cache key hashes the images, labels and ``cfg``, so new data or settings retrain.
    """
    labels = dataset.train_labels()
    if labels is None:
        raise FeatureError(f"{dataset.name} has no class labels, so the offline feature extractor cannot be "
                           f"trained on it; use --features inception (with --fid-weights PATH if offline)")
    images = dataset.images_uint8()
    digest = hashlib.sha256(json.dumps([OFFLINE_VERSION, asdict(cfg)]).encode())
    digest.update(images.numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    key = digest.hexdigest()[:12]
    path = Path(cache_dir) / f"{OFFLINE}-{_sanitize(dataset.name)}-{key}.pt"
    if load_or_discard(path, WEIGHTS_KIND) is not None:
        return path
    if log:
        log(f"training the offline feature extractor on {dataset.name} ({len(images)} images); cached as {path}")
    net, acc = train_classifier(images, labels, cfg, log)
    with torch.no_grad():  # features are divided by their RMS on the real set: FID/KID on a unit scale
        rms = torch.cat([net(_as_float(chunk))[0] for chunk in images.split(1024)]).pow(2).mean().sqrt()
    blob = {"arch": {"in_channels": images.shape[1], "n_classes": int(labels.max()) + 1,
                     "width": cfg.width, "feature_dim": cfg.feature_dim},
            "state": net.state_dict(), "feature_scale": float(rms),
            "meta": {"dataset": dataset.name, "val_accuracy": acc, "config": asdict(cfg), "key": key}}
    return save_tensors(path, WEIGHTS_KIND, blob)  # atomic: a full disk, Ctrl-C leave no half-written weights


class HarnessCNNExtractor(FeatureExtractorBase):
    """torch-fidelity wrapper of a trained `HarnessCNN` (features ``features`` and ``logits``).

    Takes uint8 images (or floats in [-1, 1]); the weights file comes through
    torch-fidelity's ``feature_extractor_weights_path`` option.
    """

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                 **kwargs: Any):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"{OFFLINE} needs feature_extractor_weights_path (see analysis.fid.offline_weights)")
        blob = load_tensors(Path(feature_extractor_weights_path), WEIGHTS_KIND)
        self.net = HarnessCNN(**blob["arch"])
        self.net.load_state_dict(blob["state"])
        self.scale = float(blob.get("feature_scale", 1.0))
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> None:
        return None

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        feats, logits = self.net(_as_float(x))
        out = {"features": feats / self.scale, "logits": logits}
        return tuple(out[f] for f in self.features_list)


if OFFLINE not in FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor(OFFLINE, HarnessCNNExtractor)


# --- choosing an extractor ---------------------------------------------------------------

@dataclass(frozen=True)
class FeatureSpec:
    """A resolved feature extractor: torch-fidelity name, weights file, and the label every
    number is printed with; ``key`` names its cached real-set features."""

    extractor: str
    weights: str | None
    label: str
    key: str
    isc: bool  # whether the Inception Score / classifier score is meaningful for this data


def _inception_weights(weights: str | None) -> Path:
    """A local Inception-v3 weights file: ``weights``, torch.hub's cache, or a download."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FeatureError(f"--fid-weights {weights}: no such file")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if not cached.is_file():
        import socket
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)
        try:
            torch.hub.download_url_to_file(INCEPTION_URL, str(cached), progress=False)
        except Exception as err:  # noqa: BLE001 - any network failure means "not available"
            raise FeatureError(f"Inception-v3 weights are not available ({type(err).__name__} downloading them): "
                               f"pass --fid-weights PATH to a copy of {INCEPTION_FILE} ({INCEPTION_URL}), "
                               f"or use --features offline") from None
        finally:
            socket.setdefaulttimeout(old)
    return cached


def resolve_features(choice: str, dataset: Any, weights: str | None = None, cache_dir: Path = Path("."),
                     offline: OfflineConfig = OfflineConfig(), log=None) -> FeatureSpec:
    """The extractor for ``dataset``: ``offline``, ``inception`` or ``auto`` (the data set's
    own default, ``dataset.features``, unless Inception weights are given). Trains/loads
    weights now, so failures come early."""
    if choice == "auto":
        choice = "inception" if weights else dataset.features
    if choice == "offline":
        path = offline_weights(dataset, cache_dir, offline, log=log)
        meta = load_tensors(path, WEIGHTS_KIND)["meta"]
        label = (f"offline CNN features ({OFFLINE} trained on {dataset.name}, held-out accuracy "
                 f"{100 * meta['val_accuracy']:.1f}%, {meta['key'][:8]}; not Inception)")
        return FeatureSpec(OFFLINE, str(path), label, f"{OFFLINE}-{meta['key']}", True)
    if choice != "inception":
        raise FeatureError(f"unknown feature extractor {choice!r}; use auto, offline or inception")
    path = _inception_weights(weights)
    digest = file_digest(path)[:8]
    try:  # torch-fidelity unpickles the file in full: it must hold nothing but tensors
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a wrong or planted file fails in many ways
        raise FeatureError(f"{path} is not a usable Inception-v3 weights file: it holds more than tensors, or "
                           f"none ({type(err).__name__})") from None
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        FeatureExtractorInceptionV3(INCEPTION, ["2048"], feature_extractor_weights_path=str(path), verbose=False)
    except Exception as err:  # noqa: BLE001 - a wrong file fails in many ways
        raise FeatureError(f"{path} is not a usable Inception-v3 weights file for torch-fidelity "
                           f"({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    label = f"Inception-v3 pool3 (torch-fidelity, weights {path.name} sha256 {digest})"
    return FeatureSpec(INCEPTION, str(path), label, f"inception-{digest}", dataset.inception_score)


# --- metrics -----------------------------------------------------------------------------

METRIC_KEYS = {"frechet_inception_distance": "fid", "kernel_inception_distance_mean": "kid",
               "kernel_inception_distance_std": "kid_std", "inception_score_mean": "isc",
               "inception_score_std": "isc_std", "precision": "precision", "recall": "recall"}
PRC_NEIGHBOURHOOD = 3  # k of the k-NN balls (Kynkaanniemi et al. 2019; torch-fidelity's default)
PRC_BATCH = 2_500  # rows of each pairwise-distance block: 2,500 x 10,000 floats = 100 MB


def image_metrics(fake: Tensor | np.ndarray, real: Tensor | np.ndarray, spec: FeatureSpec, *,
                  device: str = "cpu", kid_subset_size: int = 1000, cache_root: Path | None = None,
                  real_name: str | None = None, batch_size: int = 200, prc: bool = True) -> dict[str, float]:
    """FID, KID, precision and recall of uint8 ``fake`` against uint8 ``real`` (and IS of
    ``fake`` if meaningful).

    Precision (the share of generated images inside the k-NN balls of the real ones) and
    recall (the share of real images inside those of the generated ones), with k =
    `PRC_NEIGHBOURHOOD`, come from torch-fidelity's ``prc`` in the same feature space as
    FID: Inception pool3 or the offline extractor, not the VGG-16 features of Kynkaanniemi
    et al., so they compare across objectives here, not with papers using VGG-16.

    With ``real_name`` and ``cache_root`` the real set's features are cached by torch-fidelity
    (the name must identify the real images; the extractor's key is appended here).
    Returns ``fid``, ``kid``, ``kid_std``, ``precision``, ``recall`` (unless ``prc`` is False) and
    possibly ``isc``, ``isc_std``.
    """
    rgb = spec.extractor == INCEPTION
    cuda = torch.device(device).type == "cuda"
    kwargs = dict(
        input1=ImageTensorDataset(fake, rgb), input2=ImageTensorDataset(real, rgb),
        fid=True, kid=True, isc=spec.isc, prc=prc, prc_neighborhood=PRC_NEIGHBOURHOOD, prc_batch_size=PRC_BATCH,
        feature_extractor=spec.extractor,
        feature_extractor_weights_path=spec.weights, cuda=cuda, batch_size=batch_size,
        kid_subset_size=min(kid_subset_size, len(fake), len(real)), verbose=False, save_cpu_ram=True,
        cache=bool(real_name and cache_root))
    name = f"{_sanitize(real_name)}-{spec.key}" if kwargs["cache"] else None
    cache = _fidelity_cache(Path(cache_root), name) if name else contextlib.nullcontext()
    ctx = torch.cuda.device(torch.device(device)) if cuda else contextlib.nullcontext()
    # numpy's BLAS (KID's many small kernel matrices, FID's eigenvalues) runs on one thread:
    # threaded BLAS on these small products was 30-100x slower on a busy 2-core machine.
    with cache as private, ctx, contextlib.redirect_stdout(sys.stderr), threadpool_limits(1, user_api="blas"):
        if name:
            kwargs.update(cache_root=str(private), input2_cache_name=name)
        raw = torch_fidelity.calculate_metrics(**kwargs)
    return {METRIC_KEYS[k]: float(v) for k, v in raw.items() if k in METRIC_KEYS}


def _numpy_globals() -> list[Any]:
    """What torch-fidelity's cached FID statistics (numpy arrays of floats) unpickle, and nothing else."""
    from numpy._core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, np.dtypes.Float64DType, np.dtypes.Float32DType]


@contextlib.contextmanager
def _fidelity_cache(cache_root: Path, name: str) -> Iterator[Path]:
    """A private temporary cache folder for torch-fidelity (which unpickles its cache files in
    full), filled from the sealed file ``<cache_root>/<name>.features`` (`save_tensors`);
    what torch-fidelity adds there is sealed back into it afterwards. A damaged sealed file is
    named on stderr and rebuilt."""
    sealed = cache_root / f"{name}.features"
    items = load_or_discard(sealed, FEATURES_KIND) or {}
    with tempfile.TemporaryDirectory(prefix="fidelity-cache-") as private:
        for stem, item in items.items():
            torch.save(item, Path(private) / f"{stem}.pt")
        yield Path(private)
        with torch.serialization.safe_globals(_numpy_globals()):
            found = {p.stem: torch.load(p, map_location="cpu", weights_only=True)
                     for p in sorted(Path(private).glob(f"{name}-*.pt"))}
    if found.keys() - items.keys():
        cache_root.mkdir(parents=True, exist_ok=True)
        save_tensors(sealed, FEATURES_KIND, found)


@dataclass(frozen=True)
class ImageScoring:
    """How a data set's generated images are scored: the extractor, the KID subset size, and
    the cache of the real set's features (``real_name`` identifies the real images)."""

    spec: FeatureSpec
    kid_subset_size: int
    cache_root: Path
    real_name: str

    def __call__(self, images: Tensor | np.ndarray, real: Tensor | np.ndarray, device: str) -> dict[str, float]:
        """FID/KID (and IS where meaningful) of uint8 ``images`` against uint8 ``real``."""
        return image_metrics(images, real, self.spec, device=device, kid_subset_size=self.kid_subset_size,
                             cache_root=self.cache_root, real_name=self.real_name)

    def describe(self) -> dict[str, Any]:
        """What a record stores about its scoring: the extractor's label and key, KID's subset,
        the neighbourhood of precision and recall."""
        return {"features": self.spec.label, "features_key": self.spec.key, "kid_subset_size": self.kid_subset_size,
                "prc_neighbourhood": PRC_NEIGHBOURHOOD}


def dataset_scoring(dataset: Any, name: str, choice: str, weights: str | None, cache: Path,
                    offline: OfflineConfig = OfflineConfig(), kid_subset_size: int = 1000, log=None) -> ImageScoring:
    """How the images of ``dataset`` (directory name ``name``) are scored: the extractor
    ``choice`` resolved now (`resolve_features`; `FeatureError` when unusable), and its
    real-feature cache in ``cache`` named after a hash of the real images, so that every
    command scoring the same data with the same extractor shares it."""
    spec = resolve_features(choice, dataset, weights, cache, offline, log=log)
    real_hash = hashlib.sha256(dataset.images_uint8().numpy().tobytes()).hexdigest()[:12]
    return ImageScoring(spec, kid_subset_size, Path(cache), f"{name}-{real_hash}")
