"""Attacks on ``drivestage dedupe``: what a second parent, a lagging listing, a second
process, a refusing server and a SIGKILL at each request can make it do to the user's files.

Every test asserts what stays on Drive (paths, md5s, the trash) and what the user is told.
"""
from __future__ import annotations

import pytest

from _messages import error_line

from test_messages_dedupe import folder, live, md5, put, run, trashed


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def put_in(emulator, store, parents: list[str], name: str, data: bytes) -> str:
    """A file with several parents (Drive allowed that until 2020; such items still exist).
    Made in the first, then given the others behind the API's back: Drive (and the emulator)
    now refuses a second parent (403 cannotAddParent)."""
    f = store.drive.CreateFile({"title": name, "parents": [{"id": parents[0]}]})
    f.content = __import__("io").BytesIO(data)
    f.Upload()
    emulator.store.update(f["id"], parents=list(parents))
    return f["id"]


def test_a_file_in_both_folders_is_not_a_copy_of_itself(emulator, store):
    """A file listed in the oldest and in the newer folder (one item, two parents) is not
    a byte-identical copy: trashing it would take it out of both. It stays, in the oldest."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    both = put_in(emulator, store, [old, new], "best.pt", b"the only best")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert both not in trashed(emulator)
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"],
                              "runs/exp/best.pt": [md5(b"the only best")]}


def test_a_folder_in_both_folders_is_not_merged_into_itself(emulator, store):
    """A folder with two parents (the oldest and the newer one) merged "into itself" would
    see each of its files as a copy of itself, trash them all, then trash itself."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    f = store.drive.CreateFile({"title": "tb", "mimeType": "application/vnd.google-apps.folder",
                                "parents": [{"id": old}]})
    f.Upload()
    emulator.store.update(f["id"], parents=[old, new])  # from before Drive's one-parent rule
    put(emulator, store, f["id"], "events", b"tensorboard events")
    put(emulator, store, new, "b.txt", b"b")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert not trashed(emulator) - {new}
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"], "runs/exp/tb": ["/"],
                              "runs/exp/tb/events": [md5(b"tensorboard events")],
                              "runs/exp/b.txt": [md5(b"b")]}


def test_a_name_moved_in_a_moment_ago_is_held_though_the_listing_lags(emulator, store):
    """Three same-named folders; the first newer one's x.pt moves into the oldest, and the
    listing of the oldest, lagging, does not show it yet. The second newer one's x.pt (other
    bytes) must stay a conflict, not move in beside it: that made two x.pt in the oldest,
    the very duplicate dedupe removes, with exit 0. Nor is the moved x.pt, still listed in
    its old folder for a moment, "an item that reached it while dedupe ran"."""
    root = emulator.add_folder("runs")
    old, new1, new2 = (folder(store, "exp", root) for _ in range(3))
    put(emulator, store, new1, "x.pt", b"run one")
    theirs = put(emulator, store, new2, "x.pt", b"run two")
    emulator.faults.lag_listing(updated=2, titles=r"^x\.pt$")
    code, out, err = run("dedupe", "drive:runs/exp")
    emulator.faults.lag_listing()
    assert code == 1, err
    assert live(emulator)["runs/exp/x.pt"] == sorted([md5(b"run one"), md5(b"run two")])
    assert [f["parents"][0]["id"] for f in emulator.files() if f["title"] == "x.pt"
            and f["id"] != theirs] == [old]
    assert {f["parents"][0]["id"] for f in emulator.files() if f["id"] == theirs} == {new2}
    assert "reached a newer folder" not in err
    assert "drive:runs/exp/x.pt (in id " + new2 in err
    assert new1 in trashed(emulator) and new2 not in trashed(emulator)


def test_a_dry_run_of_three_folders_says_what_the_run_does(emulator, store):
    """Two newer folders each holding a.txt (other bytes): the dry run counts one move and
    one conflict, as the run does, not two moves."""
    root = emulator.add_folder("runs")
    old, new1, new2 = (folder(store, "exp", root) for _ in range(3))
    put(emulator, store, new1, "a.txt", b"one")
    put(emulator, store, new2, "a.txt", b"two")
    code, _, dry = run("dedupe", "drive:runs/exp", "--dry-run")
    code2, _, err = run("dedupe", "drive:runs/exp")
    assert (code, code2) == (1, 1)
    assert "1 folder to merge, 1 would stay: 1 would be moved, 0 copies would be trashed, " \
           "1 empty folder would be trashed, 1 conflict left in place" in dry
    assert "1 folder merged, 1 stays: 1 moved, 0 copies trashed, 1 empty folder trashed, " \
           "1 conflict left in place" in err


# --- a dedupe stopped at each of its writes, then run again -----------------------------------

def _tree(emulator, store, top: str) -> tuple[list[str], dict[str, list[str]]]:
    """Three ``exp`` folders with copies, free names, a same-named folder at two depths and
    a nested duplicate inside the oldest. Returns the ids in the order made (the same in every
    world) and the merged tree it must end as (paths below ``top``)."""
    root = emulator.add_folder(top)
    ids: list[str] = []

    def d(name: str, parent: str) -> str:
        ids.append(folder(store, name, parent))
        return ids[-1]

    def f(parent: str, name: str, data: bytes) -> None:
        ids.append(put(emulator, store, parent, name, data))

    old, new1, new2 = d("exp", root), d("exp", root), d("exp", root)
    f(old, "a.txt", b"A")
    osub = d("sub", old)
    f(osub, "e1", b"E1")
    tb1, tb2 = d("tb", osub), d("tb", osub)
    f(tb1, "t1", b"T1")
    f(tb2, "t2", b"T2")
    f(tb2, "t1", b"T1")
    f(new1, "a.txt", b"A")
    f(new1, "b.txt", b"B")
    s1 = d("sub", new1)
    f(s1, "e1", b"E1")
    f(s1, "e2", b"E2")
    f(d("d", d("deep", new1)), "x", b"X")
    f(new2, "b.txt", b"B")
    f(new2, "c.txt", b"C")
    s2 = d("sub", new2)
    f(s2, "e3", b"E3")
    f(s2, "e2", b"E2")
    for i, made in enumerate(ids):   # made a second apart: the same order in every world
        emulator.store.update(made, created=1.7e9 + i)
    want = {"exp": ["/"], "exp/a.txt": [md5(b"A")], "exp/b.txt": [md5(b"B")],
            "exp/c.txt": [md5(b"C")], "exp/sub": ["/"], "exp/sub/e1": [md5(b"E1")],
            "exp/sub/e2": [md5(b"E2")], "exp/sub/e3": [md5(b"E3")], "exp/sub/tb": ["/"],
            "exp/sub/tb/t1": [md5(b"T1")], "exp/sub/tb/t2": [md5(b"T2")],
            "exp/deep": ["/"], "exp/deep/d": ["/"], "exp/deep/d/x": [md5(b"X")]}
    return ids, {f"{top}/{k}": v for k, v in want.items()} | {top: ["/"]}


def _under(tree: dict[str, list[str]], top: str) -> dict[str, list[str]]:
    return {k: v for k, v in tree.items() if k == top or k.startswith(top + "/")}


def _writes(emulator, since: int) -> list:
    return [r for r in emulator.requests[since:] if r.method not in ("GET", "HEAD")]


def test_a_dedupe_stopped_at_any_write_then_run_again_ends_merged_with_nothing_lost(
        emulator, store, monkeypatch):
    """The answer to each write (a move, a trash) lost and the process gone with it (what a
    SIGKILL then does: dedupe keeps no local state), or the write refused before Drive made
    it; then dedupe again. Every world ends as the merged tree, each file's bytes there
    exactly once, nothing deleted for good."""
    from _sweep import every

    ids, want = _tree(emulator, store, "ref")
    seen = len(emulator.requests)
    code, _, err = run("dedupe", "drive:ref/exp")
    assert code == 0, err
    assert _under(live(emulator), "ref") == want
    writes = [(r.method, next(i for i, x in enumerate(ids) if x in r.path))
              for r in _writes(emulator, seen)]
    assert len(writes) >= 15
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "1")
    for k in range(0, len(writes), every(4)):
        for how in ("answer lost", "refused"):
            top = f"w{k}{how[0]}"
            ids, want = _tree(emulator, store, top)
            method, at = writes[k]
            if how == "answer lost":
                emulator.faults.drop(method=method, path=ids[at])
            else:
                emulator.faults.inject(method=method, path=ids[at], status=503)
            code, _, err = run("dedupe", f"drive:{top}/exp")
            assert code == 1, (k, how, err)
            emulator.faults.clear()
            code, _, err = run("dedupe", f"drive:{top}/exp")
            assert code == 0, (k, how, err)
            assert _under(live(emulator), top) == want, (k, how)
            assert {f["id"] for f in emulator.files()} >= set(ids), "deleted for good"


# --- what this account may not do --------------------------------------------------------------

def test_a_copy_and_a_folder_someone_else_owns_stay_and_the_rest_is_merged(emulator, store):
    """A teammate's machine made the newer folder (theirs, shared with this account as
    editor): Drive lets an editor move items out but only the owner trash. The copy and
    the folder that cannot go to the trash stay, said so; every other item is merged all the
    same, and the run says what is left, in one line."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "b.txt", b"B")
    copy = put(emulator, store, new, "b.txt", b"B")
    put(emulator, store, new, "c.txt", b"C")
    for theirs in (new, copy):
        emulator.store.update(theirs, owner="bob@example.com", shared_role="writer")
    code, out, err = run("dedupe", "drive:runs/exp")
    assert code == 1
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/", "/"],
                              "runs/exp/b.txt": [md5(b"B"), md5(b"B")],
                              "runs/exp/c.txt": [md5(b"C")]}
    assert [f["parents"][0]["id"] for f in emulator.files() if f["title"] == "c.txt"] == [old]
    assert not trashed(emulator)
    assert "1 folder stays: 1 moved, 0 copies trashed, 0 empty folders trashed, 1 refused " \
           "by Drive, left in place" in err
    assert "drive:runs/exp/b.txt (id " + copy + ") stays: Drive says this account may not " \
           "move it to the trash" in err
    assert error_line(err) == (
        f"Error: 1 item stays where it was: Drive refused this account moving or trashing it "
        f"(the warning above says why): drive:runs/exp/b.txt (in id {new}). Its owner, or a "
        "Manager of the shared drive, may: do it on Drive, or have them run `drivestage "
        "dedupe drive:runs/exp`")
    emulator.store.update(copy, trashed=True)    # bob trashed his copy
    code, out, err = run("dedupe", "drive:runs/exp")
    assert code == 1
    assert error_line(err).startswith("Error: 1 item stays where it was: Drive refused this "
                                      f"account moving or trashing it (the warning above says "
                                      f"why): drive:runs/exp (in id {new}).")
    assert new not in trashed(emulator)


# --- the path to DEST ------------------------------------------------------------------------

def test_a_path_through_a_folder_shortcut_is_followed_as_every_command_does(emulator, store):
    """drive:VOC/logs where VOC is a shortcut to a folder (Colab's "Add shortcut to Drive"):
    push, pull and ls follow it; dedupe said "drive:VOC is not a folder"."""
    shared = emulator.add_folder("elsewhere/VOC")
    emulator.add_shortcut("VOC", shared)
    old, new = folder(store, "logs", shared), folder(store, "logs", shared)
    put(emulator, store, new, "b.txt", b"b")
    code, _, err = run("dedupe", "drive:VOC/logs")
    assert code == 0, err
    assert live(emulator)["elsewhere/VOC/logs/b.txt"] == [md5(b"b")]
    assert new in trashed(emulator) and old not in trashed(emulator)


def test_names_that_differ_only_in_unicode_normalization_are_not_merged(emulator, store):
    """"café" typed on macOS (NFD) and on Linux (NFC) are two names to Drive (a path names
    one of them): never merged, never a conflict."""
    import unicodedata

    root = emulator.add_folder("runs")
    nfc, nfd = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    a, b = folder(store, nfc, root), folder(store, nfd, root)
    put(emulator, store, a, "x", b"1")
    put(emulator, store, b, "x", b"2")
    code, _, err = run("dedupe", "drive:runs")
    assert code == 0 and "no same-named folders" in err, err
    assert not trashed(emulator)


def test_two_dedupes_at_once_end_merged_with_nothing_lost(emulator, store):
    """Two dedupes of one path at the same moment (two notebooks): both go oldest first, so
    they agree; what one did, the other finds done. Merged tree, nothing lost."""
    import threading

    from drivestage.dedupe import dedupe

    ids, want = _tree(emulator, store, "two")
    errors: list[BaseException] = []

    def one() -> None:
        try:
            dedupe("drive:two/exp")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    emulator.faults.latency(0.01)   # every request: the two interleave request by request
    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    emulator.faults.clear()
    assert not errors, errors
    code, _, err = run("dedupe", "drive:two/exp")
    assert code == 0 and "no same-named folders" in err, err
    assert _under(live(emulator), "two") == want
    assert {f["id"] for f in emulator.files()} >= set(ids)


def test_duplicates_inside_a_folder_moved_a_moment_ago_are_merged_too(emulator, store):
    """A newer folder's sub/ (a free name) moves into the oldest; sub/ holds two tb/. The
    oldest's listing, lagging, does not show sub/ there yet: its tb/ were never merged, with
    exit 0 and "merged"."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    sub = folder(store, "sub", new)
    tb1, tb2 = folder(store, "tb", sub), folder(store, "tb", sub)
    put(emulator, store, tb2, "t", b"t")
    emulator.faults.lag_listing(updated=3, titles=r"^sub$")
    code, _, err = run("dedupe", "drive:runs/exp")
    emulator.faults.lag_listing()
    assert code == 0, err
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"], "runs/exp/sub": ["/"],
                              "runs/exp/sub/tb": ["/"], "runs/exp/sub/tb/t": [md5(b"t")]}


def test_a_dedupe_sigkilled_while_drive_moves_a_folder_then_run_again(emulator, store):
    """SIGKILL while the move of a whole folder (sub/, a free name) is in Drive's hands, the
    answer never read; the rerun finds it moved (or not), and ends merged."""
    from _cli import child_env
    from _forkcli import PIPE, cli_server
    from _kill import sigkill_when

    ids, want = _tree(emulator, store, "k")
    deep = ids[16]                     # new1's deep/, a free name: one move
    # Latency is time to first byte: Drive moves it, the answer waits; the kill lands then.
    emulator.faults.latency(0.5, method="PATCH", path=deep, times=1)
    seen = len(emulator.requests)
    # (forked with drivestage imported, tests/_forkcli.py: not a fresh interpreter)
    proc = cli_server().popen(["dedupe", "drive:k/exp"], env=child_env(emulator),
                              stdout=PIPE, stderr=PIPE)
    sigkill_when(proc, lambda: any(r.method == "PATCH" and deep in r.path
                                   for r in emulator.requests[seen:]),
                 "the dedupe never moved deep/")
    code, _, err = run("dedupe", "drive:k/exp")
    assert code == 0, err
    assert _under(live(emulator), "k") == want
    assert {f["id"] for f in emulator.files()} >= set(ids)


def test_a_trash_drive_refuses_though_capabilities_allowed_it_keeps_the_copy(emulator, store):
    """Capabilities said yes, Drive answers 403 to the trash of a copy: it stays, said so;
    the free name after it still moves."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.txt", b"A")
    copy = put(emulator, store, new, "a.txt", b"A")
    put(emulator, store, new, "b.txt", b"B")
    emulator.faults.inject(method="POST", path=rf"{copy}/trash",
                           reason="insufficientFilePermissions")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 1
    assert "1 refused by Drive, left in place" in err and "insufficientFilePermissions" in err
    assert [f["parents"][0]["id"] for f in emulator.files() if f["title"] == "b.txt"] == [old]
    assert not trashed(emulator)
    code, _, err = run("dedupe", "drive:runs/exp")     # Drive lets it now: finished
    assert code == 0, err
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"], "runs/exp/a.txt": [md5(b"A")],
                              "runs/exp/b.txt": [md5(b"B")]}
