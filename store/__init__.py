"""The record store: the one owner of the on-disk format of results, one module a job.

- `store.records`: the typed `Record`, written atomically, read and verified;
- `store.layout`: where records, checkpoints and live views live;
- `store.provenance`: how a result was made (versions, host, the code that ran);
- `store.checkpoints`: a stack's training state, saved and checked on load;
- `store.outputs`: checks of an output root before a command does any work.

Every public name is importable from ``store`` itself.
"""
from core.files import clean_partial, write_text
from store.checkpoints import DamagedCheckpoint, load_checkpoint, remove_checkpoint, save_checkpoint
from store.layout import (
                          cell_label,
                          claim_live_dir,
                          dataset_dir,
                          live_dir,
                          setting_dir,
                          setting_dir_of,
                          stack_checkpoint,
                          sweep_dir,
)
from store.outputs import check_names, ensure_writable
from store.provenance import Source, adopt, provenance, source
from store.records import (
                          FORMAT,
                          DamagedRecord,
                          FinishedRecordStands,
                          Record,
                          load_curves,
                          load_samples,
                          load_snapshots,
                          load_trace,
                          read,
                          record_dirs,
                          scan,
                          state,
                          update,
                          write,
)

__all__ = ["FORMAT", "DamagedCheckpoint", "DamagedRecord", "FinishedRecordStands", "Record", "cell_label",
           "check_names", "claim_live_dir", "clean_partial", "dataset_dir", "ensure_writable", "live_dir",
           "load_checkpoint", "load_curves", "load_samples", "load_snapshots", "load_trace", "provenance", "read",
           "record_dirs", "remove_checkpoint", "save_checkpoint", "scan", "setting_dir",
           "setting_dir_of", "stack_checkpoint", "Source", "adopt", "source", "state", "sweep_dir", "update", "write",
           "write_text"]
