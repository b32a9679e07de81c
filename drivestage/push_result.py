"""``PushResult``: what one push did (:func:`drivestage.upload_tree.push` returns it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from drivestage.other_runs import Left
from drivestage.retention import Decision, Plan


@dataclass
class PushResult:
    """What one push did (relative ``/``-separated paths)."""

    uploaded: list[str] = field(default_factory=list)    # sent and verified
    unchanged: int = 0                                    # already identical on the remote
    skipped_by_policy: list[str] = field(default_factory=list)  # the policy deletes them
    deleted: list[str] = field(default_factory=list)     # removed by --delete
    pruned: list[Decision] = field(default_factory=list)  # Decisions applied (deleted)
    bytes_sent: int = 0
    folders_created: int = 0
    plan: Optional[Plan] = None                           # retention plan of the DEST folder
    skipped_links: list[str] = field(default_factory=list)  # links not followed
    replaced_duplicates: list[str] = field(default_factory=list)  # older same-named copies
    further_on: list[str] = field(default_factory=list)  # left: the store's copy is further on
    other_run: list[str] = field(default_factory=list)   # left: the store's copy is another run's
    left: list[Left] = field(default_factory=list)       # both, with what the store holds

