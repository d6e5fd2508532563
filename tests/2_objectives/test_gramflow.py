"""GRAM-net's GRAMFlow form against a plain reimplementation of the authors' TensorFlow step
(github.com/GRAM-nets/GRAMFlow, GRAMFlow.ipynb), both forms under the objective contract,
and the ``form`` hyperparameter's defaults and checks.

The reimplementation follows GRAMFlow's own formulas, independently of the harness's
kernels: the kernel exp(-d^2 / (2 s)) with the squared bandwidths s, ``K_dd^-1 K_dg 1``
through ``torch.linalg.inv`` per bandwidth, the MMD^2 as ``sum(S * K)`` over the joint
Gram matrix of [generated; data] with weights 1/n and -1/m, and Adam's first update
written out, so that the generator's gradient is taken through the projector this step
updated. Float64 and distinct data points, so the comparison can be tight (1e-10).
"""
import math

import pytest
import torch
from torch.func import functional_call

import data
import objectives
from engine import RunConfig, Trainer, contract
from engine.contract import tiny_images
from objectives.gram import GRAMNet, gramflow_ratio, same_points

TOL = {"rtol": 1e-10, "atol": 1e-12}


def plain_kernel(a, b, s):
    """GRAMFlow's kernel, exp(-||a - b||^2 / (2 s)), s a squared bandwidth."""
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * s))


def plain_ratio(h_data, h_gen, squared):
    """GRAMFlow's computeRatio(GL, DL): K_dd^-1 K_dg 1 per bandwidth, averaged."""
    ones = torch.ones(len(h_gen), 1, dtype=h_gen.dtype)
    return sum(torch.linalg.inv(plain_kernel(h_data, h_data, s)) @ plain_kernel(h_data, h_gen, s) @ ones
               for s in squared).squeeze(-1) / len(squared)


def plain_mmd2(h_gen, h_data, squared):
    """GRAMFlow's mmd: sum over bandwidths of sum(S * K) on the joint Gram matrix."""
    joint = torch.cat([h_gen, h_data])
    w = torch.cat([torch.full((len(h_gen),), 1 / len(h_gen)), torch.full((len(h_data),), -1 / len(h_data))])
    w = w.to(joint.dtype)
    return sum((torch.outer(w, w) * plain_kernel(joint, joint, s)).sum() for s in squared)


def adam_first_update(param, grad, lr):
    """Adam's first step from a fresh state: the bias-corrected moments are g and g^2."""
    return param - lr * grad / (grad.abs() + 1e-8)


@pytest.fixture(scope="module", autouse=True)
def image_data():
    if contract.IMAGE_DATASET not in data.DATASETS:
        data.register(contract.IMAGE_DATASET, tiny_images)


def one_run(form, **hp):
    """A single float64 run on 16 distinct tiny images, with its noise drawn by a counter."""
    cfg = RunConfig(model="gram", dataset=contract.IMAGE_DATASET, arch="dcgan", width=8, batch=16, noise_dim=4,
                    n_samples=16, hp=(("form", form), *hp.items()))
    obj = Trainer([cfg]).objective
    for net in obj.nets.values():
        net.double()
    real = tiny_images().images[:16].double().unsqueeze(0).unsqueeze(0)  # (1 batch, 1 run, 16, 1, 8, 8)
    draws = []

    def counted_noise(n):
        draws.append(torch.rand(1, n, 4, generator=torch.Generator().manual_seed(len(draws)),
                                dtype=torch.float64) * 2 - 1)
        return draws[-1]
    obj.noise = counted_noise
    before = {name: {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
              for name, net in obj.nets.items()}
    return obj, real, draws, before


def test_gramflow_step_matches_a_plain_reimplementation():
    """GRAMFlow's squared bandwidths {1, ..., 16} scaled to the tiny projector's features
    (distances near 0.1 at initialisation): with the defaults K_dd would be all but
    all-ones, too ill-conditioned (1e7) for any two correct inverses to agree to 1e-10."""
    scaled = tuple(0.02 * math.sqrt(s) for s in (1, 2, 4, 8, 16))
    obj, real, draws, before = one_run("gramflow", sigmas=scaled)
    assert obj.hp["form"] == "gramflow" and obj.hp["lr"] == 1e-4  # the image defaults
    squared = [s**2 for s in scaled]
    x = real[0]  # (1 run, 16, 1, 8, 8): the networks take a stack of runs
    assert not same_points(x).logical_xor(torch.eye(16, dtype=torch.bool)).any()  # distinct points
    diag = obj.step(real)
    assert len(draws) == 1, "both updates use the same noise"
    z = draws[0]

    # projector step: ratio q/p at the data points, loss -mean r
    fake = functional_call(obj.generator, before["generator"], (z,))
    f_before = before["projector"]
    h_data, h_gen = (functional_call(obj.projector, f_before, (v,))[0] for v in (x, fake))
    conds = [float(torch.linalg.cond(plain_kernel(h_data, h_data, s).detach())) for s in squared]
    assert 4 < min(conds) and max(conds) < 1e4, conds  # a real inverse, yet a tight comparison
    ratio = plain_ratio(h_data, h_gen, squared)
    loss_f = -ratio.mean()
    grads_f = torch.autograd.grad(loss_f, list(f_before.values()), retain_graph=True)
    torch.testing.assert_close(diag["loss_f"], loss_f.detach().view(1), **TOL)
    torch.testing.assert_close(diag["mean_ratio"], ratio.mean().detach().view(1), **TOL)
    torch.testing.assert_close(diag["pd"], (ratio - 1).pow(2).mean().detach().view(1), **TOL)
    for got, want in zip([p.grad for p in obj.projector.parameters()], grads_f):
        torch.testing.assert_close(got, want, **TOL)

    # generator step: same batch, same noise, through the projector this step updated
    # (Adam's g / (|g| + 1e-8) magnifies the 1e-18 rounding of gradients that batch norm
    # makes zero, so the parameters agree to 1e-10 absolutely; the step then goes on from
    # the objective's own updated parameters)
    f_after = dict(obj.projector.named_parameters())
    for (k, v), g in zip(f_before.items(), grads_f):
        torch.testing.assert_close(f_after[k].detach(), adam_first_update(v, g, obj.hp["lr"]).detach(),
                                   rtol=1e-10, atol=1e-10)
    h_data, h_gen = (functional_call(obj.projector, f_after, (v,))[0] for v in (x, fake))
    mmd2 = plain_mmd2(h_gen, h_data, squared)
    loss_g = mmd2.sqrt()
    grads_g = torch.autograd.grad(loss_g, list(before["generator"].values()))
    torch.testing.assert_close(diag["mmd2"], mmd2.detach().view(1), **TOL)
    torch.testing.assert_close(diag["loss_g"], loss_g.detach().view(1), **TOL)
    for got, want in zip([p.grad for p in obj.generator.parameters()], grads_g):
        torch.testing.assert_close(got, want, **TOL)


def test_repeated_data_points_give_the_pseudo_inverse_estimate():
    """A batch drawn with replacement may repeat a point, making K_dd singular: the estimate
    is then pinv(K_dd) K_dg 1 (each copy gets its point's ratio over the copies), finite
    with finite gradients; without repeats it is the explicit inverse's."""
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(1, 10, 3, generator=gen, dtype=torch.float64)
    x = points[:, [0, 1, 2, 1, 3, 4, 5, 1, 6, 2]]  # point 1 three times, point 2 twice
    h_data = (x * 0.7).requires_grad_()
    h_gen = torch.randn(1, 10, 3, generator=gen, dtype=torch.float64)
    sigmas = (1.0, 2.0)
    got = gramflow_ratio(h_data, h_gen, sigmas, same_points(x))
    want = sum(torch.linalg.pinv(plain_kernel(h_data[0], h_data[0], s**2), hermitian=True)
               @ plain_kernel(h_data[0], h_gen[0], s**2).sum(1) for s in sigmas) / len(sigmas)
    torch.testing.assert_close(got[0], want, rtol=1e-9, atol=1e-12)
    assert got[0, 1] == got[0, 3] == got[0, 7]  # the three copies share the point's ratio
    grad, = torch.autograd.grad(got.mean(), h_data)
    assert torch.isfinite(grad).all()

    distinct = points[:, :10]
    h_data = distinct * 0.7
    inverse = sum(torch.linalg.inv(plain_kernel(h_data[0], h_data[0], s**2))
                  @ plain_kernel(h_data[0], h_gen[0], s**2).sum(1) for s in sigmas) / len(sigmas)
    torch.testing.assert_close(gramflow_ratio(h_data, h_gen, sigmas, same_points(distinct))[0], inverse, **TOL)


def test_each_form_trains_on_each_kind_of_data():
    """The forms the defaults do not select: GRAMFlow's on rings, Julia's on images, under
    every contract check (tests/2_objectives/test_contract.py covers the defaults: Julia on rings,
    GRAMFlow on images)."""
    class SwappedForms(GRAMNet):
        name = "gram-swapped-forms"
        defaults = {"toy": {**GRAMNet.defaults["toy"], "form": "gramflow"},
                    "image": {**GRAMNet.defaults["image"], "form": "julia"}}
    contract.check_objective(SwappedForms)


@pytest.mark.parametrize("form", ["julia", "gramflow"])
def test_form_selects_the_projector_loss(form):
    obj, real, _, _ = one_run(form)
    diag = obj.step(real)
    want = -diag["mean_ratio"] - (diag["pd"] if form == "julia" else 0)
    torch.testing.assert_close(diag["loss_f"], want, rtol=1e-12, atol=0)


def test_form_defaults_per_data_kind_and_family():
    forms = {(kind, family): objectives.hyperparameters("gram", kind, family=family)["form"]
             for kind, family in (("toy", ""), ("image", ""), ("image", "mnist"))}
    assert forms == {("toy", ""): "julia", ("image", ""): "gramflow", ("image", "mnist"): "julia"}
    assert objectives.hyperparameters("gram", "image", {"form": "julia"})["form"] == "julia"
    assert objectives.get("gram").version >= 3
    assert math.isclose(objectives.hyperparameters("gram", "image")["sigmas"][-1], 4.0)


@pytest.mark.parametrize("value, message", [("tf", "form must be julia or gramflow"), (1, "form must be a word")])
def test_a_bad_form_is_rejected_before_training(value, message):
    with pytest.raises(ValueError, match=message):
        objectives.hyperparameters("gram", "image", {"form": value})
