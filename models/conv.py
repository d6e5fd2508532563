"""Convolutional architectures for images: ``dcgan`` and a ``weaker`` variant.

Layout (after GRAMFlow's CIFAR-10 networks, see NOTES.md), for an image of ``C x H x W``:

- generator: noise -> dense -> ``width`` channels at ``H/2^k x W/2^k`` -> k transposed
  convolutions (4x4, stride 2), halving the channels each time, the last one to ``C``
  channels, then the data set's output activation (tanh for images in [-1, 1]);
- critic (GAN discriminator, GRAM projector, MMD-GAN encoder): k strided 4x4 convolutions
  with leaky ReLU, channels doubling up to ``width``, then one dense layer to ``out_dim``;
- decoder (MMD-GAN): the generator's layout from a ``in_dim`` code.

k is how often H and W halve while staying even and >= 4: 32x32 -> 3 stages from 4x4,
28x28 -> 2 stages from 7x7, 64x64 -> 4 stages from 4x4. ``ArchConfig.width`` is the
channel count of the widest layer (``sweeps.fid`` uses 128: generator 128-64-32,
critic 32-64-128 on 32x32 images); ``depth`` is not used (the image size fixes it).

``dcgan`` puts batch norm after every hidden layer except the critic's first (the DCGAN
recipe, and GRAMFlow's networks). ``weaker`` has half the channels and no batch norm
anywhere: a smaller, less well-conditioned pair of networks (our reading of the paper's
"weaker" row).

Batch norm makes a critic's output for an image depend on the rest of its batch: fed one
batch of real and generated images together, it normalises them with shared statistics and
computes a different function than fed each alone (in one GRAM-net step on 16x16 images the
MMD^2 is 2.04 with one batch and 0.85 with separate passes). So every objective passes real
and generated samples through a batch-norm critic separately, as all the authors' codes do
(GAN, GRAM-net, MMD-GAN, WGAN-GP; see docs/images-and-fid.md). An objective may also ask for
a critic without batch norm (``batch_norm=False``): WGAN-GP does, since its per-sample
gradient penalty is not defined for a batch-normalised critic (Gulrajani et al. 2017).

Weights follow the DCGAN/TensorFlow initialisation: convolution and dense weights
N(0, 0.02), biases 0, batch-norm scales N(1, 0.02) and shifts 0, all drawn from each run's
own generator so a run's initial weights do not depend on its stack.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.factory import ArchConfig, register_architecture
from models.stacked import PerRun, activation


def stages(x_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(k, h0, w0)``: the number of stride-2 stages and the smallest feature map size."""
    if len(x_shape) != 3:
        raise ValueError(f"convolutional architectures need images (C, H, W), got shape {tuple(x_shape)}")
    _, h, w = x_shape
    k = 0
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
        h, w, k = h // 2, w // 2, k + 1
    if k == 0:
        raise ValueError(f"image size {tuple(x_shape[1:])} is too small or odd for a conv architecture")
    return k, h, w


class TakeFirst(nn.Module):
    """Keeps the first ``n`` input features: a run's own noise out of the zero-padded stack."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: Tensor) -> Tensor:
        return x[..., :self.n]


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)


def _channels(width: int, k: int) -> list[int]:
    """Channels of the k+1 feature maps from the smallest map up: width, width/2, ..."""
    return [max(1, width // 2 ** i) for i in range(k + 1)]


def up_net(in_dim: int, x_shape: Sequence[int], width: int, batch_norm: bool, out_act: str) -> nn.Sequential:
    """Dense -> ``(width, h0, w0)`` -> k transposed convolutions -> ``x_shape``."""
    k, h0, w0 = stages(x_shape)
    ch = _channels(width, k)
    layers: list[nn.Module] = [nn.Linear(in_dim, ch[0] * h0 * w0)]
    layers += [nn.BatchNorm1d(ch[0] * h0 * w0)] if batch_norm else []
    layers += [nn.ReLU(), Reshape(ch[0], h0, w0)]
    for i in range(k - 1):
        layers += [nn.ConvTranspose2d(ch[i], ch[i + 1], 4, 2, 1, bias=not batch_norm)]
        layers += [nn.BatchNorm2d(ch[i + 1])] if batch_norm else []
        layers += [nn.ReLU()]
    layers += [nn.ConvTranspose2d(ch[k - 1], x_shape[0], 4, 2, 1), activation(out_act)]
    return nn.Sequential(*layers)


def down_net(x_shape: Sequence[int], out_dim: int, width: int, norm: bool) -> nn.Sequential:
    """k strided convolutions (channels doubling up to ``width``) -> dense -> ``out_dim``;
    ``norm`` adds batch norm after every conv but the first."""
    k, h0, w0 = stages(x_shape)
    ch = _channels(width, k)[::-1]  # ..., width/2, width
    layers: list[nn.Module] = []
    c_in = x_shape[0]
    for i, c in enumerate(ch[1:]):
        use_norm = norm and i > 0
        layers += [nn.Conv2d(c_in, c, 4, 2, 1, bias=not use_norm)]
        layers += [nn.BatchNorm2d(c)] if use_norm else []
        layers += [nn.LeakyReLU(0.2)]
        c_in = c
    layers += [nn.Flatten(), nn.Linear(c_in * h0 * w0, out_dim)]
    return nn.Sequential(*layers)


@torch.no_grad()
def dcgan_init(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """DCGAN/TensorFlow initialisation of every layer of ``net`` from ``gen`` (module order is fixed)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.02)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.Linear):
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.02)
            m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.copy_(1.0 + 0.02 * torch.randn(m.weight.shape, generator=gen))
            m.bias.zero_()
            m.reset_running_stats()
    return net


def _per_run(build, gens: Sequence[torch.Generator]) -> PerRun:
    """One network per run, built on the meta device (no global RNG use) and initialised from its generator."""
    nets = []
    for r, gen in enumerate(gens):
        with torch.device("meta"):
            net = build(r)
        nets.append(dcgan_init(net.to_empty(device="cpu"), gen))
    return PerRun(nets)


@register_architecture("dcgan")
class DCGANArchitecture:
    """DCGAN-style networks with batch norm (see the module docstring)."""

    normalise = True
    channel_scale = 1.0

    def width(self, cfg: ArchConfig, width: int | None = None) -> int:
        return max(2, int((width or cfg.width) * self.channel_scale))

    def generator(self, cfg, noise_dims, x_shape, gens, widths, pad_widths):  # one network per run: never padded
        def build(r: int) -> nn.Module:
            body = up_net(noise_dims[r], x_shape, self.width(cfg, widths[r]), self.normalise, cfg.out_activation)
            return nn.Sequential(TakeFirst(noise_dims[r]), *body)
        return _per_run(build, gens)

    def critic(self, cfg, x_shape, out_dim, gens, batch_norm=True):
        norm = self.normalise and batch_norm
        return _per_run(lambda r: down_net(x_shape, out_dim, self.width(cfg), norm), gens)

    def decoder(self, cfg, in_dim, x_shape, gens):
        return _per_run(lambda r: up_net(in_dim, x_shape, self.width(cfg), self.normalise, cfg.out_activation),
                        gens)


@register_architecture("weaker")
class WeakerArchitecture(DCGANArchitecture):
    """``dcgan`` with half the channels and no batch norm."""

    normalise = False
    channel_scale = 0.5
