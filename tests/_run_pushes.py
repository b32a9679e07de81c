"""A training run's own pushes into its run folder on Drive, as the trainer's hook makes
them: what the tests of run folders (``push ./runs drive:runs`` with a run inside) start
from."""
from __future__ import annotations

from pathlib import Path

from drivestage.hooks import CheckpointSync
from drivestage.retention import RetentionPolicy
from test_attackds29_run_folders import _save


def push_three_epochs(run_dir: Path, spec: str) -> None:
    """A run in ``run_dir`` (made here) saves epochs 1 to 3 (:func:`_save`), each pushed to
    ``spec`` as it is saved by the run's :class:`CheckpointSync` (retention keep_last 2: Drive
    keeps epochs 2 and 3), which ends after."""
    run_dir.mkdir(parents=True)
    sync = CheckpointSync(spec, RetentionPolicy(keep_last=2), local_dir=str(run_dir))
    try:
        for epoch in (1, 2, 3):
            sync.on_save(_save(str(run_dir), epoch), epoch)
            sync.flush(60)
    finally:
        sync.on_train_end(60)
