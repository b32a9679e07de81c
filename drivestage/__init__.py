"""drivestage: Google Drive as a staging area for training on machines that vanish.

Public API (imported lazily so ``import drivestage`` stays cheap and torch-free):
``pull``, ``push``, ``prune``, ``Mirror``, ``connect``, ``move_staged`` (staged copies moved
to another DEST with their stamps), and ``drivestage.hooks``.
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "pull": "drivestage.stage",
    "push": "drivestage.upload_tree",
    "prune": "drivestage.pruning",
    "Mirror": "drivestage.mirror",
    "connect": "drivestage.drive.places",
    "open_store": "drivestage.remote",
    "move_staged": "drivestage.stage_move",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'drivestage' has no attribute {name!r}")
