"""sigexit52 (attack52's left): the library's entry points given an empty string, as an
unset variable leaves it (``os.environ.get("DATA", "")``). The command line and
``remote.open_store`` refused them (attack52); the Python API did not:

- ``drivestage.stage.pull(src, dest="")`` staged into the working folder
  (``os.path.abspath("")``), a call that returned as done;
- ``CheckpointSync(dest, include="")`` mirrored nothing for the whole run, without a word (an
  empty glob matches no name); ``exclude=""``/``protect=""`` likewise meant nothing.

Now each is a UsageError naming the argument and what to give, before anything is written."""
from __future__ import annotations

import pytest

from drivestage.errors import UsageError


def test_pull_refuses_an_empty_dest(local_state, tmp_path, monkeypatch):
    """On main 1b33c61f the call returned a result: ``ds/a.txt`` staged into the working
    folder."""
    from drivestage.stage import pull

    src = tmp_path / "src" / "ds"
    src.mkdir(parents=True)
    (src / "a.txt").write_text("a")
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(UsageError) as raised:
        pull(str(src), "", quiet=True)
    assert str(raised.value) == ("pull's dest is empty (an unset variable?); give the local "
                                 "folder to stage into, e.g. './data'")
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("what,given", [("include", ""), ("exclude", ""),
                                        ("protect", ""), ("include", ["*.pt", ""])])
def test_checkpoint_sync_refuses_an_empty_pattern(local_state, tmp_path, what, given):
    """On main 1b33c61f the sync started (its mirror thread running), ``include=""`` then
    mirrored no checkpoint at all."""
    from drivestage.hooks import CheckpointSync

    remote = tmp_path / "remote"
    remote.mkdir()
    run = tmp_path / "run"
    sync = None
    with pytest.raises(UsageError) as raised:
        sync = CheckpointSync(str(remote), local_dir=str(run), **{what: given})
    if sync is not None:   # (main: stop its mirror thread before failing)
        sync.on_train_end()
    assert str(raised.value) == (f"CheckpointSync's {what} has an empty pattern (an unset "
                                 f"variable?); give a glob such as '*.pt', or leave it out")
    assert sync is None
    assert not run.exists() and list(remote.iterdir()) == []
