"""FID/KID through torch-fidelity: closed-form checks, both feature extractors, and the
smoke table end to end."""
import urllib.error

import numpy as np
import pytest
import torch
import torch_fidelity
from scipy import linalg
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

import data
import store
from metrics.images import FeatureError, FeatureSpec, OfflineConfig, image_metrics, resolve_features

TINY = OfflineConfig(epochs=1)


class Identity(FeatureExtractorBase):
    """Features = the input vectors themselves (flat float data)."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list():
        return ("x",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "x"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return None

    def forward(self, x):
        return (x.double(),)


if "test-identity" not in FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor("test-identity", Identity)
IDENTITY = FeatureSpec("test-identity", None, "identity", "identity", False)


def frechet(mu1, s1, mu2, s2):
    """Closed-form Frechet distance between N(mu1, s1) and N(mu2, s2)."""
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_of_gaussian_features_matches_closed_form():
    rng = np.random.default_rng(0)
    d, n = 4, 20_000
    a1, a2 = rng.normal(size=(d, d)), rng.normal(size=(d, d)) * 0.5
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.0, 2.0])
    x = rng.normal(size=(n, d)) @ a1.T + mu1
    y = rng.normal(size=(n, d)) @ a2.T + mu2
    m = image_metrics(torch.tensor(x), torch.tensor(y), IDENTITY, kid_subset_size=100, prc=False)
    sample = frechet(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    population = frechet(mu1, a1 @ a1.T, mu2, a2 @ a2.T)
    assert m["fid"] == pytest.approx(sample, rel=1e-6)  # torch-fidelity computes exactly this
    assert m["fid"] == pytest.approx(population, rel=0.05)  # ... which estimates the true distance
    assert m["kid"] > 0.1 and "isc" not in m
    same = image_metrics(torch.tensor(x), torch.tensor(x), IDENTITY, kid_subset_size=100, prc=False)
    assert abs(same["fid"]) < 1e-6


def plain_precision_recall(fake: np.ndarray, real: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al. (2019) with plain numpy: a point is covered by a set when it lies
    within the distance of some member of that set to the member's k-th nearest neighbour."""
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself
    d = np.linalg.norm(fake[:, None] - real[None], axis=-1)  # (fake, real)
    precision = (d <= radii(real)[None]).any(1).mean()
    recall = (d.T <= radii(fake)[None]).any(1).mean()
    return float(precision), float(recall)


def test_precision_and_recall_match_a_plain_implementation():
    rng = np.random.default_rng(1)
    fake = rng.normal(size=(300, 3))
    real = rng.normal(size=(400, 3)) * 1.5 + 0.7  # wider and shifted: neither is 0 or 1
    m = image_metrics(torch.tensor(fake), torch.tensor(real), IDENTITY, kid_subset_size=100)
    precision, recall = plain_precision_recall(fake, real)
    assert 0.1 < recall < precision < 1.0
    # torch-fidelity averages in float32; one point is 1/300
    assert (m["precision"], m["recall"]) == pytest.approx((precision, recall), abs=1e-6)
    same = image_metrics(torch.tensor(real), torch.tensor(real), IDENTITY, kid_subset_size=100)
    assert same["precision"] == same["recall"] == 1.0
    far = image_metrics(torch.tensor(fake + 100.0), torch.tensor(real), IDENTITY, kid_subset_size=100)
    assert far["precision"] == far["recall"] == 0.0


def test_offline_extractor_fid_of_a_set_against_itself_is_zero(feature_cache):
    ds = data.get("mnist5k")
    spec = resolve_features("auto", ds, cache_dir=feature_cache, offline=TINY)
    assert spec.extractor == "harness-cnn" and "not Inception" in spec.label and spec.isc
    stamp = (feature_cache / spec.weights.split("/")[-1]).stat().st_mtime_ns
    assert resolve_features("offline", ds, cache_dir=feature_cache, offline=TINY) == spec  # cached, not retrained
    assert (feature_cache / spec.weights.split("/")[-1]).stat().st_mtime_ns == stamp
    assert resolve_features("offline", ds, cache_dir=feature_cache, offline=OfflineConfig(epochs=1, seed=1,
                                                                                          width=4)).key != spec.key
    real = ds.images_uint8()[::5]  # all ten classes
    same = image_metrics(real, real, spec, kid_subset_size=100)
    assert abs(same["fid"]) < 1e-6 and abs(same["kid"]) < 0.05
    noise = torch.randint(0, 256, real.shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    far = image_metrics(noise, real, spec, kid_subset_size=100)
    assert far["fid"] > 10 and far["kid"] > 0.1 and far["isc"] < same["isc"]


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A randomly initialised Inception-v3 weights file in torch-fidelity's format."""
    from torch_fidelity import feature_extractor_inceptionv3 as module
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    with pytest.MonkeyPatch.context() as mp:  # build it without fetching or loading any weights
        mp.setattr(module, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(module.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        net = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)
    return path


def test_inception_path_loads_a_local_weights_file(random_inception):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    ds = data.get("mnist5k")
    spec = resolve_features("inception", ds, weights=str(random_inception))
    assert spec.extractor == "inception-v3-compat" and spec.weights == str(random_inception)
    assert "Inception-v3" in spec.label and "random-inception.pth" in spec.label and not spec.isc
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=str(random_inception))
    feats, logits = net(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    images = ds.images_uint8()
    m = image_metrics(images[:4], images[-4:], spec, kid_subset_size=3)  # grey digits -> RGB inside
    assert set(m) == {"fid", "kid", "kid_std", "precision", "recall"}


def test_inception_fails_with_one_clear_message(tmp_path, monkeypatch, feature_cache):
    ds = data.get("mnist5k")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FeatureError, match="--fid-weights PATH.*--features offline"):
        resolve_features("inception", ds)
    not_inception = next(feature_cache.glob("harness-cnn-*.pt"))
    with pytest.raises(FeatureError, match="not a usable Inception-v3 weights file"):
        resolve_features("inception", ds, weights=str(not_inception))


def test_paper_table_marks_partial_seeds_and_bolds_nothing_below_three():
    import pandas as pd

    from analysis.fid_table import paper_table
    rows = [("GAN", 30.0, 2.0, 3), ("MMD-GAN", 40.0, 1.0, 3), ("GRAM-net", 25.0, 1.0, 2)]
    summary = pd.DataFrame([{"arch": "dcgan", "dataset": "cifar10", "features": "inc", "label": m, "seeds": 3,
                             "finished": n, "fid_mean": mean, "fid_std": std, "fid_n": n} for m, mean, std, n in rows])
    md = paper_table(summary, "fid")
    assert list(md.columns) == ["GAN", "MMD-GAN", "GRAM-net"] and md.index[0] == ("DCGAN", "cifar10")
    assert md.iloc[0].tolist() == ["30.00 ± 2.00", "40.00 ± 1.00", "25.00 ± 1.00 (2/3)"]  # 2 seeds: no bold


def test_smoke_table_end_to_end(tmp_path, feature_cache, capsys):
    from analysis.fid_table import main as rebuild
    from sweeps.fid import main
    out = tmp_path / "res"
    args = ["--dataset", "mnist5k", "--models", "gan,mmdnet,mmdgan,gram", "--preset", "smoke", "--steps", "3",
            "--samples", "300", "--seeds", "0,1", "--widths", "16",
            "--kid-subset-size", "100", "--extractor-epochs", "1", "--cache-dir", str(feature_cache), "--out", str(out)]
    assert main(args) == 0
    fid, = (out / "fid").glob("steps3_*")  # the one setting's directory
    run, = fid.glob("mnist5k/gram_*/arch=dcgan/seed1")
    record = store.read(run)
    assert record.status == "ok" and record.config["arch"] == "dcgan" and record.config["steps"] == 3
    assert set(record.metrics) >= {"fid", "kid", "isc"} and "not Inception" in record.scoring["features"]
    with np.load(run / "samples_uint8.npz") as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape == (300, 1, 32, 32)
    assert not (run / "samples.npy").exists()
    md = (fid / "tables/fid.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| DCGAN"))
    assert row.count("**") == 0 and row.count("±") == 4 and "not Inception" in md and "Welch" in md  # 2 seeds
    assert [c.strip() for c in md.splitlines()[2].split("|")[3:7]] == ["GAN", "MMD-net", "MMD-GAN", "GRAM-net"]
    tex = (fid / "tables/fid.tex").read_text()
    assert r"$\pm$" in tex and r"\begin{tabular}" in tex and r"\caption{" in tex
    assert (fid / "tables/kid.md").exists() and (fid / "tables/summary.csv").exists()
    for name in ("samples_mnist5k_arch=dcgan.png", "samples_mnist5k_arch=dcgan.pdf",
                 "samples_mnist5k_arch=dcgan_gan.png",
                 "samples_mnist5k_arch=dcgan_mmdgan.png"):
        assert (fid / "figures" / name).stat().st_size > 1000
    capsys.readouterr()
    assert main(args) == 0  # resume: nothing retrained
    assert "8 runs (8 already finished)" in capsys.readouterr().err
    (fid / "tables/fid.md").unlink()
    assert rebuild([str(out), "--no-figures"]) == 0 and (fid / "tables/fid.md").read_text() == md
    # changed settings train again and are reported apart (never the stale 3-step runs)
    changed = [*args, "--steps", "4", "--widths", "8", "--models", "gram", "--seeds", "0"]  # the last ones count
    capsys.readouterr()
    assert main(changed) == 0
    captured = capsys.readouterr()
    assert "1 runs (0 already finished)" in captured.err
    assert "Setting: 4 generator steps, batch size 64, 300 samples, noise dimension 128, generator width 8, " \
        "generator depth 2" in captured.out  # in words
    assert "steps 3," not in captured.out
    new, = (out / "fid").glob("steps4_*/mnist5k/gram_*/arch=dcgan/seed0")
    tex = next((out / "fid").glob("steps4_*/tables/fid.tex")).read_text()
    assert tex.startswith("% setting steps4_batch64_") and "\\toprule" in tex  # the directory name, not in the caption
    assert store.read(new).config["width"] == 8 and store.read(new).config["steps"] == 4
