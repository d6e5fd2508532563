"""The training engine: the typed run configuration (`engine.config.RunConfig`), the
stacked trainer (`engine.trainer.Trainer`) and the objective contract (`engine.contract`).

Importing it first lets MKL choose its kernels by CPU features (`core.blas`), before any
product, so every process that trains computes with the same kernels, and makes glibc's
malloc keep the memory steps free for reuse (`core.allocator`)."""
from core import allocator, blas  # noqa: F401  (before anything computes)
from engine.config import MAX_STACK, RunConfig, config_key, field_default
from engine.trainer import RunOutcome, Trainer

__all__ = ["MAX_STACK", "RunConfig", "RunOutcome", "Trainer", "config_key", "field_default"]
