"""The optimised objectives against plain reference implementations of the paper's losses.

Same parameters, same real batch, same noise: the reference recomputes each loss the
obvious way (torch.cdist, torch.linalg.solve, per run, plain autograd) and the losses and
gradients must agree with what `Objective.step` computed. Everything runs in float64:
the ratio's linear system (K + 1e-3 I) has condition numbers near 1e5, so two correct
float32 solvers (Cholesky here, LU in the reference) may differ by a few percent, which
would hide real mistakes behind a loose tolerance.
"""
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from engine import RunConfig, Trainer

TOL = {"rtol": 1e-7, "atol": 1e-9}


def plain_gram(a, b, sigma=1.0):
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * sigma**2))


def plain_mmd2(a, b, sigmas=(1.0,)):
    """Squared MMD under the sum of the bandwidths' kernels."""
    return sum(plain_gram(a, a, s).mean() + plain_gram(b, b, s).mean() - 2 * plain_gram(a, b, s).mean()
               for s in sigmas)


def plain_ratio(q, p, eps=1e-3, sigmas=(1.0,)):
    """The authors' estimator: one kernel-mean-matching solve per bandwidth, averaged."""
    eye = torch.eye(len(q), dtype=q.dtype)
    return sum(len(q) / len(p) * torch.linalg.solve(plain_gram(q, q, s) + eps * eye, plain_gram(q, p, s).sum(1))
               for s in sigmas) / len(sigmas)


def setup(model, **hp):
    """A 2-run stack with fixed noise; returns (objective, real batches, noise draws, params before)."""
    trainer = Trainer([RunConfig(model=model, batch=48, seed=s, noise_dim=3, width=16, hp=tuple(hp.items()))
                       for s in (0, 1)])
    obj = trainer.objective
    for net in obj.nets.values():
        net.double()  # converts parameters in place: the optimisers keep tracking them
    real = trainer.batches(obj.batches_per_step).double()
    draws = []

    def fixed_noise(n):
        draws.append(torch.randn(2, n, 3, generator=torch.Generator().manual_seed(len(draws)), dtype=torch.float64))
        return draws[-1]
    obj.noise = fixed_noise
    before = {name: {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
              for name, net in obj.nets.items()}
    return obj, real, draws, before


def grads_of(net):
    return [p.grad for p in net.parameters()]


def per_run(fn, *tensors):
    return torch.stack([fn(*(t[r] for t in tensors)) for r in range(tensors[0].shape[0])])


@pytest.mark.parametrize("sigmas", [(1.0,), (0.5, 1.0, 2.0)])
def test_gram_losses_and_gradients_match_reference(sigmas):
    """One bandwidth (the ring) and several (as on images): one ratio per bandwidth, averaged."""
    obj, real, draws, before = setup("gram", sigmas=sigmas)
    diag = obj.step(real)
    x = real[0]
    fake = functional_call(obj.generator, before["generator"], (draws[0],))
    hq = functional_call(obj.projector, before["projector"], (fake,))
    hp = functional_call(obj.projector, before["projector"], (x,))
    ratio = per_run(lambda q, p: plain_ratio(q, p, sigmas=sigmas), hq, hp)
    pd = ((ratio - 1) ** 2).mean(1)
    loss_f = -(pd + ratio.mean(1))
    loss_g = per_run(lambda q, p: plain_mmd2(q, p, sigmas), hq, hp).clamp_min(0).add(1e-6).sqrt()
    torch.testing.assert_close(diag["pd"], pd.detach(), **TOL)
    torch.testing.assert_close(diag["loss_g"], loss_g.detach(), **TOL)
    for got, want in zip(grads_of(obj.projector), torch.autograd.grad(loss_f.sum(), list(before["projector"].values()),
                                                                      retain_graph=True)):
        torch.testing.assert_close(got, want, **TOL)
    want_g = torch.autograd.grad(loss_g.sum(), list(before["generator"].values()))
    for got, want in zip(grads_of(obj.generator), want_g):
        torch.testing.assert_close(got, want, **TOL)


def test_mmdnet_loss_and_gradient_match_reference():
    obj, real, draws, before = setup("mmdnet")
    diag = obj.step(real)
    fake = functional_call(obj.generator, before["generator"], (draws[0],))
    loss = per_run(plain_mmd2, fake, real[0]).clamp_min(0).add(1e-6).sqrt()
    torch.testing.assert_close(diag["loss_g"], loss.detach(), **TOL)
    for got, want in zip(grads_of(obj.generator), torch.autograd.grad(loss.sum(), list(before["generator"].values()))):
        torch.testing.assert_close(got, want, **TOL)


def test_gan_losses_and_gradients_match_reference():
    obj, real, draws, before = setup("gan")
    diag = obj.step(real)
    x = real[0]
    fake = functional_call(obj.generator, before["generator"], (draws[0],))
    d_real = functional_call(obj.disc, before["discriminator"], (x,))
    d_fake = functional_call(obj.disc, before["discriminator"], (fake.detach(),))
    loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real), reduction="none").mean((1, 2))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake), reduction="none").mean((1, 2)))
    torch.testing.assert_close(diag["loss_d"], loss_d.detach(), **TOL)
    for got, want in zip(grads_of(obj.disc), torch.autograd.grad(loss_d.sum(), list(before["discriminator"].values()))):
        torch.testing.assert_close(got, want, **TOL)
    # the generator step uses the discriminator as updated by this step's D step, on fresh noise
    after_d = dict(obj.disc.named_parameters())
    logits = functional_call(obj.disc, after_d, (functional_call(obj.generator, before["generator"], (draws[1],)),))
    loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none").mean((1, 2))
    torch.testing.assert_close(diag["loss_g"], loss_g.detach(), **TOL)
    want_g = torch.autograd.grad(loss_g.sum(), list(before["generator"].values()))
    for got, want in zip(grads_of(obj.generator), want_g):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("reuse_batch", [True, False])
def test_mmdgan_losses_and_gradients_match_reference(reuse_batch):
    """One critic step and the generator step: on one real batch (the GRAM authors' ring
    code) or on a fresh real batch each (Li et al.)."""
    lambda_ae = 8.0
    obj, real, draws, before = setup("mmdgan", n_critic=1, reuse_batch=reuse_batch, lambda_ae=lambda_ae)
    assert real.shape[0] == (1 if reuse_batch else 2)
    diag = obj.step(real)
    hp = obj.hp
    enc0 = {k: v.detach().clamp(-hp["clip"], hp["clip"]).requires_grad_() for k, v in before["encoder"].items()}
    dec0 = before["decoder"]

    def terms(enc_params, x, fake):
        fx = functional_call(obj.encoder, enc_params, (x,))
        ff = functional_call(obj.encoder, enc_params, (fake,))
        mmd = per_run(plain_mmd2, ff, fx).clamp_min(0).add(1e-6).sqrt()
        one_sided = -F.relu(-(ff.mean(1) - fx.mean(1))).mean(-1)
        return mmd + hp["lambda_rg"] * one_sided, fx, ff

    fake_c = functional_call(obj.generator, before["generator"], (draws[0],)).detach()
    adv, fx, ff = terms(enc0, real[0], fake_c)
    ae = (((functional_call(obj.decoder, dec0, (fx,)) - real[0]) ** 2).mean((1, 2))
          + ((functional_call(obj.decoder, dec0, (ff,)) - fake_c) ** 2).mean((1, 2)))
    loss_c = -(adv - lambda_ae * ae)
    torch.testing.assert_close(diag["loss_critic"], loss_c.detach(), **TOL)
    want = torch.autograd.grad(loss_c.sum(), list(enc0.values()) + list(dec0.values()))
    for got, w in zip(grads_of(obj.encoder) + grads_of(obj.decoder), want):
        torch.testing.assert_close(got, w, **TOL)
    enc1 = dict(obj.encoder.named_parameters())
    loss_g, _, _ = terms(enc1, real[-1], functional_call(obj.generator, before["generator"], (draws[1],)))
    torch.testing.assert_close(diag["loss_g"], loss_g.detach(), **TOL)
    for got, w in zip(grads_of(obj.generator), torch.autograd.grad(loss_g.sum(), list(before["generator"].values()))):
        torch.testing.assert_close(got, w, **TOL)
