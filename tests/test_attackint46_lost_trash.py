"""attackint46: a batch of trashes, each naming its check's etag (ifmatch46), Drive carried
out and whose every answer was lost; each item then goes alone
(:class:`drivestage.drive.batches.NoBatches`, ``unanswered``).

A trash changes the item's etag, so ifmatch46 names the etag on a trash's first try only:
a retry after one done would be refused as "changed since it was checked" where Drive
honours If-Match on files.trash, and the item, in the trash, said "kept as it is now". The
batch's own retries kept that rule; the lone trash after them named the old etag again. Now
a lone trash of an item sent in such a batch names none, as a retry. The real PyDrive2 stack
against the emulator (its ``faults.drop``)."""
from __future__ import annotations

from _guarded_runs import run_with_extras, titles_in
from _signal_env import _fast  # noqa: F401  (an autouse fixture)


def test_a_lone_trash_after_a_lost_batch_of_trashes_names_no_etag(emulator, drive_env,
                                                                   local_state, tmp_path):
    from drivestage.upload_tree import push

    src = run_with_extras(emulator, tmp_path, ("a.txt", "b.txt"))
    ids = [emulator.find(f"runs/exp/{n}")["id"] for n in ("a.txt", "b.txt")]
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 2:   # (the removals' batch: every answer lost, Drive did them)
            emulator.faults.drop("POST", r"/batch", times=None)
    start = len(emulator.requests)
    res = push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert sorted(res.deleted) == ["a.txt", "b.txt"]
    assert titles_in(emulator, "runs/exp", trashed=True) == ["a.txt", "b.txt"]
    trashes = [(r.in_batch, "If-Match" in r.headers) for r in emulator.requests[start:]
               if r.kind == "files.trash" and any(i in r.path for i in ids)]
    lone = [named for in_batch, named in trashes if not in_batch]
    # The batch's first attempt named each etag (and its retries none): the lone trashes,
    # sent after it, name none either.
    assert trashes[:2] == [(True, True)] * 2, trashes
    assert lone == [False, False], trashes
