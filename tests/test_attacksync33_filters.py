"""``--delete`` with ``--include``/``--exclude`` beside run folders SRC lacks, by
attacksync33."""
from __future__ import annotations

import pytest

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import env  # noqa: F401  (a fixture)
from test_runmark30_marks import _fresh_vm, _old_runs


@pytest.mark.parametrize("filters", [("--exclude", "*.csv"),
                                     ("--include", "*.pt", "--include", "*.txt")],
                         ids=["exclude", "include"])
def test_a_filtered_delete_leaves_a_run_folder_src_lacks_whole_behind_a_listing_without_marks(
        emulator, env, tmp_path, monkeypatch, filters):
    """A fresh VM's ``push ./runs drive:runs --delete --exclude '*.csv'`` (or ``--include
    '*.pt'``), exp1 and exp2 (marked run folders) on Drive alone, Drive's listing showing no
    properties: a folder SRC lacks, under filters, goes file by file where the filters leave
    something of it out, and nothing asked whether the folder itself was a run folder; every
    checkpoint of both runs went to the trash (``results.csv``, filtered out, stayed). Asked
    as the unfiltered ``--delete`` asks it, each is left whole, and said."""
    before = _old_runs(emulator, tmp_path)
    emulator.list_leaves_out = {"properties"}
    runs = _fresh_vm(tmp_path, monkeypatch)

    code, _, err = run("push", str(runs), "drive:runs", "--delete", *filters)

    assert code == 0, err
    assert {name: live_md5s(emulator, f"runs/{name}") for name in before} == before
    assert "--delete leaves drive:runs/exp1 whole: it is a run folder" in err
    trashed = {f["title"] for f in emulator.files() if f["labels"]["trashed"]}
    assert "old.txt" in trashed
