"""No backward pass of the kernel math or the stacked layers makes a tensor from host data
or reads a value back to the host: on a GPU either is a host-device copy inside every step
(and a sync, which a captured CUDA graph cannot contain). Checked on the CPU by recording
every aten op the backward dispatches."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from models.stacked import StackedMLP
from objectives import kernels

# ops that carry host data into a tensor (torch.tensor of a Python list) or a tensor's value to the host
HOST_OPS = ("aten.lift_fresh", "aten._local_scalar_dense", "aten.item", "aten._to_copy")


class HostOps(TorchDispatchMode):
    """Records the ops dispatched inside the block whose name starts with one of `HOST_OPS`."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func).startswith(HOST_OPS):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def _host_ops_in_backward(loss: torch.Tensor, inputs: list[torch.Tensor]) -> list[str]:
    with HostOps() as mode:
        torch.autograd.grad(loss, inputs)
    return mode.seen


def test_the_detector_sees_a_tensor_made_from_a_list_and_a_host_read():
    with HostOps() as mode:
        torch.tensor([1.0, 2.0]).sum().item()
    assert "aten.lift_fresh.default" in mode.seen and "aten._local_scalar_dense.default" in mode.seen


@pytest.mark.parametrize("sigmas", [(1.0,), (0.5, 1.0, 2.0)])
def test_gram_net_kernel_backward_stays_on_the_device(sigmas):
    gen = torch.Generator().manual_seed(0)
    x_de = torch.randn(3, 20, 4, generator=gen, requires_grad=True)
    x_nu = torch.randn(3, 25, 4, generator=gen, requires_grad=True)
    ratio, d2 = kernels.ratio_and_mmd2(x_de, x_nu, sigmas)
    loss = (ratio - 1).pow(2).mean() + kernels.smooth_mmd(d2).sum()
    assert _host_ops_in_backward(loss, [x_de, x_nu]) == []
    d2 = kernels.mmd2(x_de, x_nu, sigmas)
    assert _host_ops_in_backward(d2.sum(), [x_de, x_nu]) == []


def test_stacked_network_backward_stays_on_the_device():
    net = StackedMLP(3, (2,), [32, 32], (2,))
    net.reset([torch.Generator().manual_seed(r) for r in range(3)])
    x = torch.randn(3, 40, 2, requires_grad=True)
    assert _host_ops_in_backward(net(x).pow(2).sum(), [x, *net.parameters()]) == []
