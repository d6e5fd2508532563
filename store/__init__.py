"""The record store (`store.records`): one owner of the on-disk format of results."""
from store.records import (FORMAT, DamagedRecord, Record, cell_label, check_names, clean_partial, dataset_dir, ensure_record_target,
                           ensure_writable, load_samples, load_snapshots, load_trace, provenance, read, record_dirs,
                           scan, setting_dir, setting_dir_of, state, sweep_dir, write, write_text)

__all__ = ["FORMAT", "DamagedRecord", "Record", "cell_label", "check_names", "clean_partial", "dataset_dir", "ensure_record_target",
           "ensure_writable", "load_samples", "load_snapshots", "load_trace", "provenance", "read", "record_dirs",
           "scan", "setting_dir", "setting_dir_of", "state", "sweep_dir", "write", "write_text"]
