"""The training engine: the typed run configuration (`engine.config.RunConfig`), the
stacked trainer (`engine.trainer.Trainer`) and the objective contract (`engine.contract`)."""
from engine.config import RunConfig, config_key, field_default
from engine.trainer import RunOutcome, Trainer

__all__ = ["RunConfig", "RunOutcome", "Trainer", "config_key", "field_default"]
