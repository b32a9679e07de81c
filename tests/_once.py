"""Something expensive (a reference training run) made once per test session, shared by the
test workers (pytest-xdist): a module-scoped fixture alone is made again in every worker that
runs one of the module's tests, and those are spread over the workers.

The first worker that asks makes it under a file lock; the others wait for it and read what it
left (a folder, and a small picklable value) instead of training the same run again.
"""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock


def made_once(tmp_path_factory, name: str, make: Callable[[Path], Any]) -> tuple[Path, Any]:
    """``(folder, value)``: ``make(folder)`` run once per session (all workers together), in a
    folder of its own under the session's temporary root; ``value`` is what it returned
    (picklable). Tests must not change the folder: copy it first."""
    base = tmp_path_factory.getbasetemp()
    if base.name.startswith("popen-gw"):   # a worker's: the session's root is above it
        base = base.parent
    folder = base / f"once-{name}"
    done = base / f"once-{name}.pickle"
    with FileLock(str(base / f"once-{name}.lock")):
        if not done.exists():
            # (A make that failed in another worker left its folder: this one starts afresh.)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            value = make(folder)
            done.write_bytes(pickle.dumps(value))
    return folder, pickle.loads(done.read_bytes())


# --------------------------------------------------------------------------- shared training runs

def config_like(made: Path, out_dir: Path, **kw: Any) -> str:
    """A config file beside ``out_dir``: that of ``made`` (a :func:`shared_run`'s folder), its
    data included, with ``out_dir`` and ``kw`` instead; its path."""
    import yaml

    cfg = yaml.safe_load((made / "run.yaml").read_text())
    cfg["train"]["out_dir"] = str(out_dir)
    cfg["data"]["root"] = str(out_dir.parent / f"{out_dir.name}-data")
    for key, value in kw.items():
        section, name = key.split(".")
        cfg[section][name] = value
    path = out_dir.parent / f"{out_dir.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def shared_run(synth_voc, tmp_path_factory, name: str, kw: dict, callbacks=()) -> tuple[Path, dict]:
    """``(folder, made)``: a run of the tiny config (conftest.py's ``tiny_config``, on one
    thread) with ``kw``, in ``folder / "logs"`` (its config: ``folder / "run.yaml"``),
    trained once for all the session's workers, whatever test module asks for ``name``
    first; ``made``: its final metrics ("final") and what each of ``callbacks`` recorded
    ("rows"). The synthetic data is the same in every worker (seed 0): a run trained on one
    worker's is the run any worker would train."""
    import torch
    import yaml

    from trainer.config import load_config
    from trainer.engine import fit

    def make(folder: Path) -> dict:
        cfg = {"data": {"classes": str(synth_voc.classes_file), "train": str(synth_voc.train_lines_file),
                        "val": str(synth_voc.val_lines_file), "workers": 0, "root": str(folder / "data")},
               "model": {"input_size": 64, "width": 0.25},
               "train": {"epochs": 2, "freeze_epochs": 1, "batch_size": 8, "freeze_batch_size": 8,
                         "save_period": 1, "eval_period": 1, "out_dir": str(folder / "logs"),
                         "deterministic": True, "device": "cpu", "mosaic": True, "mixup": True}}
        (folder / "run.yaml").write_text(yaml.safe_dump(cfg))
        path = config_like(folder, folder / "logs", **kw)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            result = fit(load_config(path), resume="none", callbacks=list(callbacks))
        finally:
            torch.set_num_threads(threads)
        (folder / "run.yaml").write_text((folder / "logs.yaml").read_text())
        return {"final": result.final, "rows": [cb.rows for cb in callbacks]}

    return made_once(tmp_path_factory, name, make)
