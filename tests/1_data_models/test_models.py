"""Stacked networks behave exactly like separate ordinary networks."""
import torch
from torch import nn

from models import ArchConfig, NetFactory
from models.stacked import StackedMLP
from objectives.base import make_optimizer
from objectives.flat_adam import FlatAdam


def plain_mlp(stacked: StackedMLP, r: int, in_size: int) -> nn.Sequential:
    """An ordinary nn.Sequential MLP holding run r's weights (padding rows dropped)."""
    layers = []
    for i, lin in enumerate(stacked.linears):
        w = lin.weight[r, :in_size] if i == 0 else lin.weight[r]
        plain = nn.Linear(*w.shape)
        with torch.no_grad():
            plain.weight.copy_(w.T)
            plain.bias.copy_(lin.bias[r, 0])
        layers += [plain, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def test_stacked_mlp_equals_separate_mlps_with_padding():
    factory = NetFactory(ArchConfig(width=16), (2,), noise_dims=[2, 5, 3], seeds=[0, 1, 2])
    gen = factory.generator()
    z = torch.randn(3, 7, 5)
    for r, d in enumerate([2, 5, 3]):
        z[r, :, d:] = 0  # padding the NoiseSource applies
    out = gen(z)
    for r, d in enumerate([2, 5, 3]):
        torch.testing.assert_close(out[r], plain_mlp(gen, r, d)(z[r, :, :d]))


def test_padded_weights_get_zero_gradient():
    factory = NetFactory(ArchConfig(width=8), (2,), noise_dims=[2, 4], seeds=[0, 1])
    gen = factory.generator()
    z = torch.randn(2, 5, 4)
    z[0, :, 2:] = 0
    gen(z).pow(2).sum().backward()
    first = gen.linears[0]
    assert torch.all(first.weight[0, 2:] == 0) and torch.all(first.weight.grad[0, 2:] == 0)
    assert torch.any(first.weight.grad[1, 2:] != 0)


def test_initialisation_depends_only_on_own_seed():
    alone = NetFactory(ArchConfig(), (2,), [4], [7]).critic(3, "projector")
    stacked = NetFactory(ArchConfig(), (2,), [2, 4], [1, 7]).critic(3, "projector")
    for a, b in zip(alone.state_dict().values(), stacked.state_dict().values()):
        torch.testing.assert_close(a[0], b[1])
    other_role = NetFactory(ArchConfig(), (2,), [4], [7]).critic(3, "discriminator")
    assert not torch.equal(alone.linears[0].weight, other_role.linears[0].weight)


def test_run_state_dict_loads_into_single_run_network():
    factory = NetFactory(ArchConfig(width=8), (2,), noise_dims=[2, 4], seeds=[0, 1])
    gen = factory.generator()
    single = NetFactory(ArchConfig(width=8), (2,), noise_dims=[2], seeds=[0]).generator()
    single.load_state_dict(gen.run_state_dict(0, 2))
    z = torch.randn(1, 6, 2)
    torch.testing.assert_close(single(z)[0], gen(torch.nn.functional.pad(z.expand(2, -1, -1), (0, 2)))[0])


def test_a_narrow_layer_stores_its_weight_transposed_and_trains_like_a_plain_one():
    """The last layer of a ring generator (2 outputs) keeps its weight as (R, out, in) in memory,
    so its forward product, computed transposed, reads a contiguous operand (`models.stacked`);
    its values, gradients and Adam updates are a plain layer's."""
    gen = NetFactory(ArchConfig(width=20), (2,), noise_dims=[3, 3], seeds=[0, 1]).generator()
    narrow, wide = gen.linears[-1].weight, gen.linears[0].weight
    assert narrow.mT.is_contiguous() and not narrow.is_contiguous() and wide.is_contiguous()
    plain = [plain_mlp(gen, r, 3) for r in range(2)]
    z = torch.randn(2, 9, 3)
    opt = make_optimizer(gen.parameters(), "adam", lr=1e-2)
    assert isinstance(opt, FlatAdam)  # the parameters share one flat buffer, each in its own layout
    plain_opts = [torch.optim.Adam(p.parameters(), lr=1e-2, betas=(0.5, 0.999)) for p in plain]
    for _ in range(3):
        opt.zero_grad()
        gen(z).pow(2).sum().backward()
        opt.step()
        for p, o, zr in zip(plain, plain_opts, z):
            o.zero_grad()
            p(zr).pow(2).sum().backward()
            o.step()
    assert narrow.mT.is_contiguous()
    for r in range(2):
        torch.testing.assert_close(gen.linears[-1].weight[r].T, plain[r][-1].weight)
