"""On the CPU a sweep stacks seeds, noise dimensions and generator widths together by
default (up to --max-stack 16): a bigger stack costs less per run (the ring grid of one
seed as one stack of 12 against three of 4, one per width: MMD-GAN 1.17x, GAN 1.22x,
GRAM-net and MMD-net 1.12x faster per step), and each width keeps a generator of its own
(`models.stacked.WidthGroups`)."""

from sweeps import stability
from sweeps.worker import stack_tasks


def test_a_cpu_sweep_stacks_across_seeds_and_widths_by_default(tmp_path):
    sweep = stability.StabilitySweep()
    args = sweep.build_parser().parse_args(["--models", "gram", "--seeds", "0,1", "--out", str(tmp_path)])
    plan = sweep.plan(args)
    assert not plan.placement.on_gpu and args.max_stack == 16
    tasks = stack_tasks("stability", plan.cells, plan.cells, lambda d: None, (), args.max_stack)
    assert [len(t.cells) for t in tasks] == [16, 8]  # 4 noise dimensions x 3 widths x 2 seeds, cut at 16
    for t in tasks:
        widths = [c.config.width for c in t.cells]
        assert {c.config.seed for c in t.cells} == {0, 1} and len(set(widths)) > 1 and widths == sorted(widths)
