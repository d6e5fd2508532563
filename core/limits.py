"""Upper bounds of the sizes every command checks, one place without torch: the run
configuration (`engine.config.RunConfig`) and the option table (`cli.options`, answered
before torch is imported) read them here. Far beyond any experiment here (the paper: width
<= 200, 10,500 steps, 10,000 samples), so they only catch a typo (an extra zero or three)
before it fills the memory or runs for a year.
"""
from __future__ import annotations

LIMITS = {"noise_dim": 4_096, "width": 4_096, "depth": 64, "steps": 10_000_000, "batch": 65_536,
          "n_samples": 1_000_000}  # RunConfig field -> its largest value
