"""The training engine: the typed run configuration (`engine.config.RunConfig`), the
stacked trainer (`engine.trainer.Trainer`) and the objective contract (`engine.contract`)."""
from engine.config import MAX_STACK, RunConfig, config_key, field_default
from engine.trainer import RunOutcome, Trainer

__all__ = ["MAX_STACK", "RunConfig", "RunOutcome", "Trainer", "config_key", "field_default"]
