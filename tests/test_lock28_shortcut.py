"""A folder reached through a shortcut inside a push's folder: `push ./a drive:outer` where
``outer/link`` is a shortcut to the folder ``x``, and `push ./b drive:x` at the same moment
both write into ``x``. The tree lock held ``outer``'s lock and those above it, not ``x``'s:
neither waited, and both made every new file of ``x`` (lock28). A push now also takes the
locks of the folders its tree reaches through shortcuts, once it has listed them."""
from __future__ import annotations

import pytest

from test_push27_nested import _live_in, _two_at_once
from test_push_safety import _md5, _no_duplicates, _run_tree, _write


@pytest.mark.parametrize("outer_first", [True, False], ids=["outer-first", "x-first"])
def test_a_push_through_a_shortcut_and_one_into_its_target_wait_for_each_other(
        emulator, local_state, monkeypatch, outer_first):
    x = emulator.add_folder("x")
    emulator.add_folder("x/tb/deep")
    emulator.add_folder("outer")
    emulator.add_shortcut("outer/link", x)
    files = _run_tree(local_state / "a" / "link")
    for rel, data in files.items():   # (the same files: each push would make them)
        _write(str(local_state / "b" / rel), data)
    outer = (str(local_state / "a"), "drive:outer")
    into_x = (str(local_state / "b"), "drive:x")
    said = _two_at_once(emulator, monkeypatch, *((outer, into_x) if outer_first
                                                 else (into_x, outer)))
    assert _no_duplicates(emulator) == {}
    assert _live_in(emulator, x) == {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert len(said) == 1 and said[0].endswith("; waiting for it"), said


@pytest.mark.parametrize("to", ["itself", "the-folder-above"])
def test_a_push_whose_tree_has_a_shortcut_back_up_never_waits_for_itself(
        emulator, local_state, monkeypatch, to):
    """A shortcut in DEST's tree to DEST itself or to a folder above it: its locks are held
    already (exclusively, or shared); taking them again would wait for the push itself."""
    import threading

    from drivestage.upload_tree import push

    emulator.add_folder("top/outer")
    target = emulator.find("top/outer" if to == "itself" else "top")["id"]
    emulator.add_shortcut("top/outer/back", target)
    _write(str(local_state / "a" / "back" / "note.txt"), b"n")
    _write(str(local_state / "a" / "results.csv"), b"r")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    errors: list = []

    def run() -> None:
        try:
            push(str(local_state / "a"), "drive:top/outer", jobs=1)
        except Exception as exc:  # reported below
            errors.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the push waits for itself"
    if to == "itself":   # (the store refuses the loop, as before: said, never a wait)
        assert [type(e).__name__ for e in errors] == ["ShortcutCycleError"], errors
        return
    assert not errors, errors
    assert _live_in(emulator, target)["note.txt"] == _md5(b"n")
