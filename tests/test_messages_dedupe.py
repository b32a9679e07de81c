"""``drivestage dedupe``: same-named folders merged into the oldest, the one every push takes.

Two machines pushing into a brand-new path while Drive's listing lags each make its folders
(each remembers only the folders it made itself). Pushes then agree on the oldest, but every
read of the path refuses it. These tests make the duplicates as that happens (two state
folders, a lagging listing) or as older tools left them, and check what stays on Drive: the
items, their bytes, what went to the trash, and that nothing is deleted for good.
"""
from __future__ import annotations

import hashlib
import os

import pytest
from click.testing import CliRunner

from _messages import error_line, renders, shown
from drivestage.cli import cli
from drivestage.drive.resources import FOLDER_MIME


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def run(*args: str, state: str | None = None) -> tuple[int, str, str]:
    env = {"DRIVESTAGE_STATE_DIR": state} if state else None
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


def live(emulator) -> dict[str, list[str]]:
    """Path of every item not in the trash -> md5s (folders: ``/``), from the emulator."""
    recs = {f["id"]: f for f in emulator.files()}

    def path(f) -> str:
        names = [f["title"]]
        while f["parents"] and f["parents"][0]["id"] in recs:
            f = recs[f["parents"][0]["id"]]
            names.append(f["title"])
        return "/".join(reversed(names))

    out: dict[str, list[str]] = {}
    for f in recs.values():
        if f["labels"]["trashed"] or _under_trashed(f, recs):
            continue
        md5 = "/" if f["mimeType"] == FOLDER_MIME else f.get("md5Checksum")
        out.setdefault(path(f), []).append(md5)
    return {k: sorted(v) for k, v in out.items()}


def _under_trashed(f, recs) -> bool:
    while f["parents"] and f["parents"][0]["id"] in recs:
        f = recs[f["parents"][0]["id"]]
        if f["labels"]["trashed"]:
            return True
    return False


def trashed(emulator) -> set[str]:
    return {f["id"] for f in emulator.files() if f["labels"]["trashed"]}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def folder(store, name: str, parent: str) -> str:
    """A folder made as another tool (or an older drivestage) would: no look first."""
    f = store.drive.CreateFile({"title": name, "mimeType": FOLDER_MIME,
                                "parents": [{"id": parent}]})
    f.Upload()
    return f["id"]


def put(emulator, store, parent: str, name: str, data: bytes) -> str:
    f = store.drive.CreateFile({"title": name, "parents": [{"id": parent}]})
    f.content = __import__("io").BytesIO(data)
    f.Upload()
    return f["id"]


@renders("items with that exact name (ids")
def test_two_machines_that_made_one_new_path_are_merged_and_the_path_reads_again(
        emulator, store, tmp_path):
    """Machine A and B push into Models/logs while the listing hides each one's folders from
    the other: two Models folders. Reads refuse the path, naming dedupe; dedupe merges B's
    into A's; then ls and pull read it, every file with its bytes, nothing deleted."""
    for m, data in (("a", b"epoch 1 of machine a"), ("b", b"machine b's notes")):
        os.makedirs(tmp_path / m / "logs")
        (tmp_path / m / "logs" / f"{m}.txt").write_bytes(data)
    emulator.faults.lag_listing(created=6, titles=r"^(Models|logs)$")
    for m in ("a", "b"):   # each machine has its own state folder (what it made)
        code, _, err = run("push", str(tmp_path / m / "logs"), "drive:Models/logs",
                           state=str(tmp_path / f"state-{m}"))
        assert code == 0, err
    emulator.faults.lag_listing()
    for _ in range(6):   # the lag is counted in answers: let it run out in every folder
        store.list(store.resolve(""))
        for f in emulator.files():
            if f["mimeType"] == FOLDER_MIME:
                store.list(store.resolve(f"id:{f['id']}"))
    tops = [f for f in emulator.files() if f["title"] == "Models"]
    assert len(tops) == 2
    a_id = min(tops, key=lambda f: (f["createdDate"], f["id"]))["id"]

    code, _, err = run("ls", "drive:Models/logs")
    assert code == 1
    line = error_line(err)
    shown("items with that exact name (ids", line)
    assert line.endswith("or merge them: drivestage dedupe drive:Models.")

    code, out, err = run("dedupe", "drive:Models/logs")
    assert code == 0, err
    assert f"into the oldest (id {a_id})" in out
    assert "dedupe drive:Models/logs: 2 folders merged: 1 moved, 0 copies trashed, " \
           "2 empty folders trashed" in err
    assert live(emulator) == {"Models": ["/"], "Models/logs": ["/"],
                              "Models/logs/a.txt": [md5(b"epoch 1 of machine a")],
                              "Models/logs/b.txt": [md5(b"machine b's notes")]}
    assert len(trashed(emulator)) == 2   # B's Models and its logs, empty, in the trash
    code, _, err = run("pull", "drive:Models/logs", str(tmp_path / "got"))
    assert code == 0, err
    assert (tmp_path / "got" / "logs" / "b.txt").read_bytes() == b"machine b's notes"
    code, out, err = run("dedupe", "drive:Models/logs")   # again: nothing to do, no write
    assert code == 0 and "no same-named folders" in err


@renders("in a newer folder: … the oldest folder holds another item of that name")
def test_a_name_held_with_other_bytes_stays_until_the_user_chooses(emulator, store, tmp_path):
    """Two runs' epoch_001.pt (different bytes) stay where they are, and so does their
    folder; a same-bytes copy goes to the trash, a free name moves. Once the user removed
    one of the two, the same command finishes the merge."""
    root = emulator.add_folder("runs")
    old = folder(store, "exp", root)
    new = folder(store, "exp", root)
    put(emulator, store, old, "epoch_001.pt", b"run one")
    put(emulator, store, old, "results.csv", b"same")
    theirs = put(emulator, store, new, "epoch_001.pt", b"run two")
    copy = put(emulator, store, new, "results.csv", b"same")
    put(emulator, store, new, "epoch_002.pt", b"run two, epoch 2")

    code, out, err = run("dedupe", "drive:runs/exp")
    assert code == 1
    line = error_line(err)
    shown("in a newer folder: … the oldest folder holds another item of that name", line)
    assert line == (f"Error: 1 item stays in a newer folder: drive:runs/exp/epoch_001.pt (in "
                    f"id {new}); the oldest folder holds another item of that name. Rename "
                    "or remove one of the two on Drive, then run `drivestage dedupe "
                    "drive:runs/exp` again")
    assert copy in trashed(emulator) and new not in trashed(emulator)
    assert live(emulator) == {
        "runs": ["/"], "runs/exp": ["/", "/"],
        "runs/exp/epoch_001.pt": sorted([md5(b"run one"), md5(b"run two")]),
        "runs/exp/epoch_002.pt": [md5(b"run two, epoch 2")],   # moved into the oldest
        "runs/exp/results.csv": [md5(b"same")]}
    assert [f["parents"][0]["id"] for f in emulator.files()
            if f["title"] == "epoch_002.pt"] == [old]

    store.drive.CreateFile({"id": theirs}).Delete()   # the user chose run one
    code, out, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert new in trashed(emulator)
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"],
                              "runs/exp/epoch_001.pt": [md5(b"run one")],
                              "runs/exp/epoch_002.pt": [md5(b"run two, epoch 2")],
                              "runs/exp/results.csv": [md5(b"same")]}


def test_a_dry_run_writes_nothing(emulator, store):
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a", b"a")
    put(emulator, store, new, "b", b"b")
    before = live(emulator)
    seen = len(emulator.requests)
    code, out, err = run("dedupe", "drive:runs/exp", "--dry-run")
    assert code == 0, err
    assert out == f"to merge: drive:runs/exp (id {new}) into the oldest (id {old})\n"
    assert "1 folder to merge: 1 would be moved, 0 copies would be trashed, 1 empty folder " \
           "would be trashed" in err
    assert [r.method for r in emulator.requests[seen:] if r.method != "GET"] == []
    assert live(emulator) == before


def test_nested_duplicates_below_the_path_and_a_lost_answer(emulator, store):
    """Duplicates inside the path (runs/exp/tb twice) are merged too; a move whose answer is
    lost after Drive made it is asked again and ends the same."""
    exp = emulator.add_folder("runs/exp")
    tb1, tb2 = folder(store, "tb", exp), folder(store, "tb", exp)
    put(emulator, store, tb1, "events.1", b"one")
    moved = put(emulator, store, tb2, "events.2", b"two")
    emulator.faults.drop(method="PATCH", path=rf"^/drive/v2/files/{moved}")
    seen = len(emulator.requests)
    code, out, err = run("dedupe", "drive:runs")
    assert code == 0, err
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"], "runs/exp/tb": ["/"],
                              "runs/exp/tb/events.1": [md5(b"one")],
                              "runs/exp/tb/events.2": [md5(b"two")]}
    assert trashed(emulator) == {tb2}
    assert sum(r.method == "PATCH" and moved in r.path for r in emulator.requests[seen:]) == 2


def test_a_file_where_a_folder_is_meant_and_a_missing_path(emulator):
    emulator.add_file("runs/exp", b"not a folder")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert (code, error_line(err)) == (2, "Error: drive:runs/exp is not a folder; dedupe "
                                          "merges folders")
    code, _, err = run("dedupe", "drive:")
    assert (code, error_line(err)) == (2, "Error: dedupe needs a folder below the top of the "
                                          "drive (e.g. drive:Models/logs), not the whole drive")
    code, _, err = run("dedupe", "drive:nowhere")
    assert (code, error_line(err)) == (1, "Error: drive:nowhere not found (no item named "
                                          "'nowhere' in drive:; names are case-sensitive)")


def test_shortcuts_move_as_items_and_their_targets_stay_put(emulator, store):
    """A shortcut in a newer folder (to a folder, to a file) is moved like a file, never
    merged or followed: its target stays where its owner keeps it."""
    shared = emulator.add_folder("elsewhere/data")
    target = emulator.add_file("elsewhere/notes.txt", b"notes")
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "data", b"a file called data")   # a name the shortcut shares
    link_dir = store.drive.CreateFile({"title": "data", "parents": [{"id": new}],
                                       "mimeType": "application/vnd.google-apps.shortcut",
                                       "shortcutDetails": {"targetId": shared}})
    link_dir.Upload()
    link_file = store.drive.CreateFile({"title": "n.txt", "parents": [{"id": new}],
                                        "mimeType": "application/vnd.google-apps.shortcut",
                                        "shortcutDetails": {"targetId": target}})
    link_file.Upload()
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 1 and "drive:runs/exp/data (in id" in error_line(err)
    parents = {f["id"]: [p["id"] for p in f["parents"]] for f in emulator.files()}
    assert parents[link_file["id"]] == [old]        # moved
    assert parents[link_dir["id"]] == [new]         # a conflict with the file "data": stays
    assert parents[shared] != [old] and parents[target] != [old]   # targets untouched
    assert not trashed(emulator)


def test_two_items_of_one_name_in_a_newer_folder_and_a_hostile_title(emulator, store):
    """A newer folder holding two files of one name: the first moves, the second is then a
    name the oldest holds (a copy of the same bytes goes to the trash, other bytes stay); a
    title with a terminal escape and a newline is printed escaped, never raw."""
    root = emulator.add_folder("runs")
    evil = "exp\x1b]0;pwned\x07\nmerged: fake"
    old, new = folder(store, evil, root), folder(store, evil, root)
    first = put(emulator, store, new, "a.txt", b"one")
    same = put(emulator, store, new, "a.txt", b"one")
    other = put(emulator, store, new, "a.txt", b"two")
    code, out, err = run("dedupe", "drive:runs")
    assert code == 1
    assert "\x1b" not in out + err and out.count("\n") == 1, out
    parents = {f["id"]: f["parents"][0]["id"] for f in emulator.files()}
    moved = [i for i in (first, same, other) if parents[i] == old]
    assert len(moved) == 1   # one a.txt in the oldest, never two
    assert set(live(emulator)[f"runs/{evil}/a.txt"]) == {md5(b"one"), md5(b"two")}
    body = {first: b"one", same: b"one", other: b"two"}
    assert all(body[i] == body[moved[0]] for i in trashed(emulator) & set(body))  # copies only


def test_an_item_the_first_listing_did_not_show_keeps_its_folder(emulator, store):
    """A file the newer folder's first listing did not show (Drive's listing lags, or a push
    added it meanwhile) shows in the listing before the folder would go to the trash: the
    folder stays with it (exit 1, saying to run again), and the next run merges it."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, new, "a.txt", b"a")
    emulator.faults.lag_listing(created=1, titles=r"^late\.txt$")
    late = put(emulator, store, new, "late.txt", b"late")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 1
    assert error_line(err) == (
        f"Error: 1 item reached a newer folder while dedupe ran: drive:runs/exp/late.txt (in "
        f"id {new}); it stays there. Run `drivestage dedupe drive:runs/exp` again once "
        "nothing pushes there")
    assert new not in trashed(emulator) and late not in trashed(emulator)
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"], "runs/exp/a.txt": [md5(b"a")],
                              "runs/exp/late.txt": [md5(b"late")]}


@renders("stays where it was: Drive refused this account moving or trashing it (the warning "
         "above says why): …")
def test_an_item_drive_will_not_let_this_account_move_stays_and_the_rest_is_merged(
        emulator, store):
    """Drive refuses one move (403: in a shared drive a Contributor may not move items; a
    file someone else owns): that item and its folder stay, the next item is merged all the
    same, and the error says who may finish it."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    stuck = put(emulator, store, new, "a.txt", b"a")
    put(emulator, store, new, "b.txt", b"b")
    emulator.faults.inject(method="PATCH", path=stuck, reason="insufficientFilePermissions")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 1
    line = error_line(err)
    shown("stays where it was: Drive refused this account moving or trashing it (the warning "
          "above says why): …", line)
    assert line == (f"Error: 1 item stays where it was: Drive refused this account moving or "
                    f"trashing it (the warning above says why): drive:runs/exp/a.txt (in id "
                    f"{new}). Its owner, or a Manager of the shared drive, may: do it on Drive, "
                    "or have them run `drivestage dedupe drive:runs/exp`")
    assert "insufficientFilePermissions" in err    # the warning: Drive's own reason
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/", "/"],
                              "runs/exp/a.txt": [md5(b"a")], "runs/exp/b.txt": [md5(b"b")]}
    assert [f["parents"][0]["id"] for f in emulator.files() if f["title"] == "b.txt"] == [old]
    assert not trashed(emulator)


def test_a_contributor_on_a_shared_drive_is_refused_every_move_by_drive_itself(emulator):
    """No injected fault: a shared drive where this account is a Contributor, whose duplicate
    folders a Manager's machines made. Drive refuses the move (tests/test_emulator_roles.py):
    the item stays, so does its folder, nothing goes to the trash, and the error says who may
    finish it."""
    team = emulator.add_shared_drive("Team")
    old = emulator.add_folder("runs/exp", drive_id=team)
    emulator.add_file("runs/exp2/a.txt", b"a", drive_id=team)
    new = emulator.find("runs/exp2", drive_id=team)["id"]
    # Made a minute after the first: which one is the oldest must not hang on a tie of ids.
    emulator.store.update(new, title="exp", created=emulator.store.get(old)["created"] + 60)
    emulator.set_drive_role(team, "writer")
    code, _, err = run("dedupe", "drive:shared/Team/runs/exp")
    assert code == 1, err
    line = error_line(err)
    assert line.startswith("Error: 1 item stays where it was: Drive refused this account "
                           "moving or trashing it"), line
    item = next(f["id"] for f in emulator.files() if f["title"] == "a.txt")
    assert f"runs/exp/a.txt (id {item}) stays: move" in err   # refused by Drive, said
    assert "does not have sufficient permissions" in err
    assert [f["parents"][0]["id"] for f in emulator.files() if f["title"] == "a.txt"] == [new]
    assert old != new and not trashed(emulator)
