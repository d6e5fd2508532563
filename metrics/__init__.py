"""Metrics that workers compute on a finished run's samples: mode metrics for toy
mixtures (`metrics.ring`) and FID/KID/IS for images through torch-fidelity (`metrics.images`),
each described once in `metrics.catalog` for every table, figure and progress line."""
