"""The record store (`store.records`): one owner of the on-disk format of results."""
from core.files import clean_partial, write_text
from store.records import (FORMAT, DamagedCheckpoint, DamagedRecord, Record, cell_label, check_names, dataset_dir,
                           ensure_record_target, ensure_writable, live_dir, load_checkpoint, load_curves, load_samples,
                           load_snapshots, load_trace, provenance, read, record_dirs, remove_checkpoint,
                           run_checkpoint, save_checkpoint, scan, setting_dir, setting_dir_of, stack_checkpoint, state,
                           sweep_dir, update, write)

__all__ = ["FORMAT", "DamagedCheckpoint", "DamagedRecord", "Record", "cell_label", "check_names", "clean_partial",
           "dataset_dir", "ensure_record_target", "ensure_writable", "live_dir", "load_checkpoint", "load_curves",
           "load_samples", "load_snapshots", "load_trace", "provenance", "read", "record_dirs", "remove_checkpoint",
           "run_checkpoint", "save_checkpoint", "scan", "setting_dir", "setting_dir_of", "stack_checkpoint", "state",
           "sweep_dir", "update", "write", "write_text"]
