"""Attacks on what came in on 2026-12-03: a file changed on Drive while it downloads (one
metadata call, then "changed on Drive"), files whose download is off for viewers, folders
shared read-only, copies with the same bytes of a checkpoint a push deletes, and Drive's new
403 reasons.

As a hostile user (names that a shell or a glob reads), a second process (a new version of a
checkpoint pushed while it downloads) and a lying server (metadata that changes though the
bytes do not, a stat that fails) would. What is asserted: exit codes, the one error line,
requests made, files left on disk and on Drive."""
from __future__ import annotations

import hashlib
import os
import subprocess

import pytest
from click.testing import CliRunner

from _envs import env_user_lines  # noqa: F401  (a fixture)
from _proxy import Proxy, Reply
from drivestage.cli import cli

KiB = 1024
TEACHER = "teacher@school.edu"
_MEDIA = "media.download"


pytestmark = pytest.mark.usefixtures("env")   # (_envs.env_user_lines: for every test)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


def _error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("Error: ")]
    assert lines, stderr
    return lines[-1]


def _media(emu) -> list:
    return [r for r in emu.requests if r.kind == _MEDIA]


# --------------------------------------------------------------------------- downloads off

def _shared(emu, files: dict[str, bytes], restricted: tuple[str, ...]) -> dict[str, str]:
    """A teacher's folder "Course" shared read-only (a shortcut to it in My Drive), with
    downloads off for ``restricted``."""
    folder = emu.add_folder("Course", owner=TEACHER, shared_with_me="reader")
    emu.add_shortcut("Course", folder)
    ids = {name: emu.add_file(f"Course/{name}", data, owner=TEACHER)
           for name, data in files.items()}
    for name in restricted:
        emu.restrict_download(ids[name])
    return ids


def _hint(line: str) -> list[str]:
    """The ``--exclude PATTERN`` the error line suggests, as a shell would read it pasted
    (bash: a name with a control character is a ``$'…'`` word, mount52)."""
    at = line.index("--exclude ")
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {line[at:]}"], capture_output=True,
                          check=True)
    return [os.fsdecode(a) for a in done.stdout.split(b"\0")[:2]]


@pytest.mark.parametrize("name", [
    "it's v2.zip",            # a quote: the hint's own quoting must survive it
    "set [final] *.zip",      # glob characters: escaped, they must still match the name
    "sub/deep/VOC07.zip",     # in a subfolder: the path inside the pulled folder
    "sub/o'brien [1].zip",    # both, below the top
    "bell\a\u202e.zip",      # a control and a bidi character: shown escaped, still matched
])
def test_the_exclude_the_message_suggests_works_when_pasted(emulator, tmp_path, name):
    ids = _shared(emulator, {"README.txt": b"r" * 100, name: b"z" * 100}, (name,))
    assert ids
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:Course", str(dest))
    assert code == 1
    line = _error(err)
    assert "its owner has turned off downloading" in line, line
    hint = _hint(line)
    emulator.clear_requests()
    code, err = _run("pull", "-q", "drive:Course", str(dest), *hint)
    assert code == 0, (hint, err)
    assert (dest / "Course" / "README.txt").read_bytes() == b"r" * 100
    assert not [p for p in dest.rglob("*.zip*")]


def test_an_include_that_leaves_the_restricted_file_out(emulator, tmp_path):
    _shared(emulator, {"README.txt": b"r" * 100, "sub/VOC07.zip": b"z" * 100,
                       "sub/notes.txt": b"n" * 10}, ("sub/VOC07.zip",))
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:Course", str(dest), "--include", "*.txt")
    assert code == 0, err
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()
                  and ".drivestage" not in p.parts) == ["README.txt", "notes.txt"]


def test_a_shortcut_to_a_restricted_file(emulator, tmp_path):
    ids = _shared(emulator, {"VOC07.zip": b"z" * 100}, ("VOC07.zip",))
    emulator.add_shortcut("mine/VOC07.zip", ids["VOC07.zip"])
    emulator.add_file("mine/a.txt", b"a")
    emulator.clear_requests()
    code, err = _run("pull", "-q", "drive:mine/VOC07.zip", str(tmp_path / "one"))
    assert code == 1
    assert "its owner has turned off downloading" in _error(err), err
    code, err = _run("pull", "-q", "drive:mine", str(tmp_path / "all"))
    assert code == 1
    line = _error(err)
    assert "its owner has turned off downloading" in line and "--exclude 'VOC07.zip'" in line
    assert _media(emulator) == []


# --------------------------------------------------------------------------- changed on Drive

@pytest.fixture
def proxy(emulator, monkeypatch):
    """A proxy in front of the emulator, which the commands talk to."""
    with Proxy(emulator.url) as p:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", p.url)
        yield p


def _zip(tmp_path, name: str, members: dict[str, bytes]) -> bytes:
    import zipfile

    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path.read_bytes()


def _replaced_at_first_media(store, path: str, newer) -> "callable":
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        entry = store.resolve(path)
        store.upload(str(newer), store.resolve(os.path.dirname(path)), entry.name, replace=entry)
        return Reply(status, headers, [body])
    return mutate


def test_pull_extract_of_a_zip_replaced_by_one_of_the_same_size(emulator, proxy, store, tmp_path):
    old = _zip(tmp_path, "old.zip", {f"m{i}.bin": os.urandom(64 * KiB) for i in range(8)})
    new = _zip(tmp_path, "new.zip", {f"m{i}.bin": os.urandom(64 * KiB) for i in range(8)})
    assert len(old) == len(new)
    emulator.add_file("VOC/set.zip", old)
    replaced: list = []
    replace = _replaced_at_first_media(store, "VOC/set.zip", tmp_path / "new.zip")

    def at_the_first_bytes(status: int, headers: dict, body: bytes) -> Reply:
        # Replaced once the stream's first range (old bytes) is read, before its next one is
        # asked for: the download mixes the two versions whichever request comes first
        # (replaced at the zip's tail, read beside the stream, all the stream's ranges
        # could be read before the upload ended: the old version, whole and consistent).
        if not replaced and str(headers.get("Content-Range", "")).startswith("bytes 0-"):
            replaced.append(True)
            return replace(status, headers, body)
        return Reply(status, headers, [body])

    proxy.on("GET", r"alt=media", at_the_first_bytes)
    dest = tmp_path / "d"
    code, err = _run("pull", "-x", "-q", "drive:VOC/set.zip", str(dest), "-j", "1",
                     "--chunk-size", "64KiB")
    assert replaced
    assert code == 1, err
    line = _error(err)
    assert "changed on Drive while downloading" in line and "run again" in line, line
    # Nothing extracted from the mix of two versions is left as if it were a member.
    assert sorted(p.name for p in dest.glob("m*")) == [], sorted(dest.rglob("*"))
    code, err = _run("pull", "-x", "-q", "drive:VOC/set.zip", str(dest))
    assert code == 0, err
    import zipfile
    with zipfile.ZipFile(tmp_path / "new.zip") as zf:
        for member in zf.namelist():
            assert (dest / member).read_bytes() == zf.read(member), member


# --------------------------------------------------------------------------- read-only folders

_WRITES = ("files.insert", "files.update", "files.patch", "media.upload", "files.delete",
           "files.trash", "files.copy")


def _writes(emu) -> list[str]:
    return [r.kind for r in emu.requests if r.kind in _WRITES]


@pytest.mark.parametrize("role,ok", [("reader", False), ("commenter", False),
                                     ("writer", True), ("fileOrganizer", True),
                                     ("organizer", True)])
@pytest.mark.parametrize("dest", ["drive:shared/Team", "drive:shared/Team/runs/a",
                                  "drive:shared/Team/old"])
def test_a_push_into_a_shared_drive_by_role(emulator, tmp_path, role, ok, dest):
    team = emulator.add_shared_drive("Team", role="organizer")
    emulator.add_folder("old", drive_id=team)
    emulator.set_drive_role(team, role)
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"x" * 100)
    emulator.clear_requests()
    code, err = _run("push", str(src), dest)
    if ok:
        assert code == 0, err
        assert _writes(emulator)
        return
    assert code == 1, err
    line = _error(err)
    assert "is shared with you read-only (Drive: canAddChildren false)" in line, line
    assert _writes(emulator) == []


@pytest.mark.parametrize("logs", ["drive:shared/Team", "drive:shared/Team/runs/me"])
def test_the_trainers_check_before_training_in_a_shared_drive_it_reads_only(emulator, tmp_path,
                                                                            logs):
    from drivestage.errors import PermissionDeniedError
    from trainer.drive import DriveFolder

    team = emulator.add_shared_drive("Team", role="reader")
    emulator.clear_requests()
    with pytest.raises(PermissionDeniedError) as err:
        DriveFolder(logs, str(tmp_path / "logs")).check_writable()
    assert str(err.value).startswith("drive:shared/Team is shared with you read-only"), err.value
    assert _writes(emulator) == []
    emulator.set_drive_role(team, "writer")   # a Contributor may: no error
    DriveFolder(logs, str(tmp_path / "logs")).check_writable()


# --------------------------------------------------------------------------- twins

FOLDER = "Models/logs"


@pytest.mark.parametrize("use_trash", [False, True])
def test_a_collaborators_copy_with_the_same_bytes_is_no_twin_to_delete(emulator, tmp_path,
                                                                        use_trash):
    """A teammate (edit access to my folder in My Drive) uploaded the very bytes of my
    epoch 1 under its name: their file, which Drive lets me neither delete nor trash. The
    push whose plan deletes epoch 1 deletes my copy and keeps theirs, as retention keeps
    every file someone else owns. Before: it tried to delete theirs as a "twin" and the
    push failed (403 insufficientFilePermissions), at every push."""
    import time as _time

    from _checkpoints import save
    from _drive_state import live_md5s
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    t0 = _time.time() - 3600
    src = tmp_path / "logs"
    sent = {}
    for e in (1, 2):
        sent.update(save(str(src), f"epoch_{e:03d}", e, t0 + 10 * e, saved=t0 + 10 * e))
    push(str(src), f"drive:{FOLDER}")
    theirs = emulator.add_file(f"{FOLDER}/epoch_001.pt", (src / "epoch_001.pt").read_bytes())
    emulator.store.update(theirs, owner="bob@example.com", shared_role="writer",
                          modified=t0 - 100)
    newer = save(str(src), "epoch_003", 3, t0 + 30, saved=t0 + 30)
    result = push(str(src), f"drive:{FOLDER}", RetentionPolicy(keep_last=1), use_trash=use_trash)
    live = live_md5s(emulator, FOLDER)
    # Their copy stays, and my sidecar with it: it vouches for the bytes still there.
    assert live == {**newer, "epoch_001.pt": sent["epoch_001.pt"],
                    "epoch_001.json": sent["epoch_001.json"]}, (live, result.pruned)
    assert [f["id"] for f in emulator.files() if f["id"] == theirs
            and not f["labels"]["trashed"]] == [theirs]


# --------------------------------------------------------------------------- a mismatch, then the stat

_STAT = r"/files/[^/?]+\?(?!.*alt=media)"


def _spoilt_then(proxy, stat_reply) -> None:
    """The first media answer arrives with a byte changed (on the way, not on Drive); from
    then on files.get answers ``stat_reply(status, headers, body)``."""
    def spoil(status: int, headers: dict, body: bytes) -> Reply:
        proxy.on("GET", _STAT, stat_reply)
        return Reply(status, headers, [bytes([body[0] ^ 1]) + body[1:]])
    proxy.on("GET", r"alt=media", spoil, times=1)


def _json_edit(edit) -> "callable":
    import json

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        res = json.loads(body)
        edit(res)
        data = json.dumps(res).encode()
        return Reply(status, {**headers, "Content-Length": str(len(data))}, [data])
    return mutate


@pytest.mark.parametrize("edit", [
    lambda res: None,                                              # the truth
    lambda res: res.update(md5Checksum=res["md5Checksum"].upper()),  # spelt in capitals
    lambda res: res.pop("sha256Checksum", None),                   # sha256 left out now
    lambda res: res.update(sha256Checksum=None),
], ids=["same", "upper", "no-sha256", "null-sha256"])
def test_a_mismatch_on_the_way_with_drive_unchanged_downloads_again(emulator, proxy, tmp_path,
                                                                    edit):
    data = os.urandom(256 * KiB)
    emulator.add_file("VOC/a.bin", data)
    _spoilt_then(proxy, _json_edit(edit))
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:VOC/a.bin", str(dest), "-j", "1")
    assert code == 0, err
    assert (dest / "a.bin").read_bytes() == data
    assert proxy.count("GET", _STAT) == 1   # the one metadata call


@pytest.mark.parametrize("status,reason,says", [
    (404, "notFound", "not found"),
    (403, "insufficientFilePermissions", "permission denied"),
    (500, "backendError", ""),
])
def test_a_mismatch_then_a_stat_that_fails(emulator, proxy, tmp_path, status, reason, says):
    import json

    data = os.urandom(256 * KiB)
    emulator.add_file("VOC/a.bin", data)
    body = json.dumps({"error": {"code": status, "message": reason, "errors": [
        {"domain": "global", "reason": reason, "message": reason}]}}).encode()
    _spoilt_then(proxy, lambda *_: Reply(status, {"Content-Type": "application/json",
                                                  "Content-Length": str(len(body))}, [body]))
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:VOC/a.bin", str(dest), "-j", "1")
    line = _error(err)
    assert code == 1, err
    assert says in line, line
    assert [p.name for p in dest.iterdir() if not p.name.startswith(".")] == [] \
        if dest.exists() else True


def test_a_file_restricted_after_half_of_it_was_pulled(emulator, store, tmp_path):
    """A pull of a file was cut halfway; then its owner turned downloading off. The next
    pull fails before any media request; the partial download (hidden, possibly gigabytes)
    stays, for the day the owner turns downloading back on (the message does not say so)."""
    from drivestage.download import Download
    from drivestage.partials import stale_partials

    data = os.urandom(512 * KiB)
    fid = emulator.add_file("VOC/big.zip", data)
    dest = tmp_path / "d"
    dest.mkdir()
    target = str(dest / "big.zip")
    half = Download(store, store.resolve("VOC/big.zip"), target, jobs=1)
    half.fetch_first(0, 256 * KiB)
    half.close()  # what the cut pull left: the partial and its record, closed
    emulator.store.update(fid, owner=TEACHER, shared_role="reader")
    emulator.restrict_download(fid)
    emulator.clear_requests()
    code, err = _run("pull", "-q", "drive:VOC/big.zip", str(dest))
    assert code == 1, err
    assert "its owner has turned off downloading" in _error(err)
    assert _media(emulator) == []
    assert [os.path.getsize(p) for p in stale_partials(target)] == [256 * KiB], \
        os.listdir(dest)


@pytest.mark.parametrize("logs", ["drive:shared-with-me/Runs", "drive:shared-with-me/Runs/me"])
def test_the_trainers_check_before_training_directly_in_shared_with_me(emulator, tmp_path, logs):
    """drive.logs in "Shared with me" itself (a folder there that does not exist): every push
    of the run would fail ("nothing can be created directly in Shared with me"), so the
    check before training fails now; a folder shared with me as an editor passes."""
    from drivestage.errors import UsageError
    from trainer.drive import DriveFolder

    emulator.clear_requests()
    with pytest.raises(UsageError) as err:
        DriveFolder(logs, str(tmp_path / "logs")).check_writable()
    assert "nothing can be created directly in Shared with me" in str(err.value), err.value
    emulator.add_folder("Runs", owner=TEACHER, shared_with_me="writer")
    DriveFolder(logs, str(tmp_path / "logs")).check_writable()
    assert _writes(emulator) == []


@pytest.mark.timeout(60)   # before: it went on failing every period, never ending
def test_a_mirror_directly_into_shared_with_me_fails_at_its_start(emulator, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    emulator.clear_requests()
    code, err = _run("mirror", str(src), "drive:shared-with-me/Runs", "--every", "60")
    assert code in (1, 2), err
    assert "nothing can be created directly in Shared with me" in _error(err), err
    assert _writes(emulator) == []


@pytest.mark.parametrize("name", ["it's [old]", "plain"])
def test_the_exclude_a_shortcut_loop_suggests_works_when_pasted(emulator, tmp_path, name):
    top = emulator.add_folder("A")
    emulator.add_file("A/a.txt", b"a")
    emulator.add_shortcut(f"A/B/{name}", top)
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:A", str(dest))
    assert code == 1
    line = _error(err)
    assert "a folder it sits in" in line, line
    code, err = _run("pull", "-q", "drive:A", str(dest), *_hint(line.replace(")", " ")))
    assert code == 0, err
    assert (dest / "A" / "a.txt").read_bytes() == b"a"


@pytest.mark.parametrize("name", ["it's [v2]", "plain"])
def test_the_exclude_two_shortcuts_to_one_folder_suggest_works_when_pasted(emulator, tmp_path,
                                                                           name):
    emulator.add_folder("L0")
    inner = emulator.add_folder("L1")
    emulator.add_file("L1/leaf.txt", b"x")
    emulator.add_file("L0/top.txt", b"t")
    emulator.add_shortcut("L0/a", inner)
    emulator.add_shortcut(f"L0/{name}", inner)
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:L0", str(dest))
    assert code == 1
    line = _error(err)
    assert "a folder pull takes each folder once" in line, line
    code, err = _run("pull", "-q", "drive:L0", str(dest), *_hint(line.replace(")", " ")))
    assert code == 0, err
    assert (dest / "L0" / "top.txt").read_bytes() == b"t"


@pytest.mark.parametrize("extra", [0, 1000], ids=["same-size", "other-size"])
def test_a_checkpoint_replaced_while_it_downloads_is_a_remote_changed_error(
        emulator, proxy, store, tmp_path, extra):
    """What the trainer's fetch of a checkpoint sees when another machine pushes a new
    version of it meanwhile: a :class:`RemoteChangedError` of either kind (a caller that
    chose the file for the bytes its sidecar vouches for lists again), never a file."""
    from drivestage.download import download
    from drivestage.drive import connect
    from drivestage.errors import RemoteChangedError

    emulator.add_file("Models/logs/epoch_002.pt", os.urandom(512 * KiB))
    newer = tmp_path / "newer.pt"
    newer.write_bytes(os.urandom(512 * KiB + extra))
    through = connect(api_root=proxy.url, token="test-token")
    entry = through.resolve("Models/logs/epoch_002.pt")

    def cut_and_replace(status: int, headers: dict, body: bytes) -> Reply:
        # The connection drops halfway; another machine's push lands before the resume.
        _replaced_at_first_media(store, "Models/logs/epoch_002.pt", newer)(status, headers, b"")
        kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        return Reply(status, kept, [body[:len(body) // 2]])

    proxy.on("GET", r"alt=media", cut_and_replace, times=1)
    target = tmp_path / "logs" / "epoch_002.pt"
    target.parent.mkdir()
    with pytest.raises(RemoteChangedError, match="changed on Drive while downloading"):
        download(through, entry, str(target))
    assert not target.exists()


def test_the_trainers_check_before_training_where_no_push_could_get_past(emulator, tmp_path):
    """drive.logs through a shortcut whose target is gone, or through a file: every push of
    the run would fail on it (a run that resumes from its local checkpoints only warns that
    it could not list Drive), so the check before training fails with the push's message."""
    from drivestage.errors import DanglingShortcutError, UsageError
    from trainer.drive import DriveFolder

    gone = emulator.add_folder("x/Runs", owner=TEACHER, shared_with_me="writer")
    emulator.add_shortcut("Runs", gone)
    emulator.unshare(gone)
    emulator.add_file("Models/file.txt", b"f")
    emulator.clear_requests()
    for logs in ("drive:Runs", "drive:Runs/me/logs"):
        with pytest.raises(DanglingShortcutError, match="drive:Runs is a shortcut to an item "
                                                        "that is gone"):
            DriveFolder(logs, str(tmp_path / "logs")).check_writable()
    for logs in ("drive:Models/file.txt", "drive:Models/file.txt/logs"):
        with pytest.raises(UsageError, match="drive:Models/file.txt exists and is a file, "
                                             "not a folder"):
            DriveFolder(logs, str(tmp_path / "logs")).check_writable()
    DriveFolder("drive:Models/new/logs", str(tmp_path / "logs")).check_writable()
    assert _writes(emulator) == []


@pytest.mark.timeout(60)   # before: it went on failing every period, never ending
def test_a_mirror_through_a_dangling_shortcut_fails_at_its_start(emulator, tmp_path):
    gone = emulator.add_folder("x/Runs", owner=TEACHER, shared_with_me="writer")
    emulator.add_shortcut("Runs", gone)
    emulator.unshare(gone)
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    code, err = _run("mirror", str(src), "drive:Runs/me", "--every", "60")
    assert code == 1, err
    assert "drive:Runs is a shortcut to an item that is gone" in _error(err), err


@pytest.mark.parametrize("extract", [False, True])
def test_a_rerun_over_an_intact_copy_of_a_file_restricted_since(emulator, tmp_path, extract):
    """A notebook's pull cell, run again after the owner turned downloading off: the file is
    here already, staged and verified against the same version on Drive; nothing needs
    downloading, so the rerun succeeds as before (one metadata call, no media request)."""
    data = _zip(tmp_path, "set.zip", {"a.txt": b"a" * 100, "b.txt": b"b" * 100}) \
        if extract else b"z" * 1000
    ids = _shared(emulator, {"set.zip": data}, ())
    dest = tmp_path / "d"
    flags = ("-x",) if extract else ()
    code, err = _run("pull", "-q", *flags, "drive:Course/set.zip", str(dest))
    assert code == 0, err
    emulator.restrict_download(ids["set.zip"])
    emulator.clear_requests()
    code, err = _run("pull", "-q", *flags, "drive:Course/set.zip", str(dest))
    assert code == 0, err
    assert _media(emulator) == []
    if extract:
        assert (dest / "a.txt").read_bytes() == b"a" * 100
    else:
        assert (dest / "set.zip").read_bytes() == data


@pytest.mark.parametrize("extract", [False, True])
def test_a_folder_pull_rerun_over_a_file_restricted_since(emulator, tmp_path, extract):
    """The same for a folder pull: the restricted file staged already passes; one that is
    not (a new file of the folder, restricted too) still fails while listing, before any
    media request."""
    data = _zip(tmp_path, "set.zip", {"a.txt": b"a" * 100}) if extract else b"z" * 1000
    ids = _shared(emulator, {"README.txt": b"r" * 10, "sub/set.zip": data}, ())
    dest = tmp_path / "d"
    flags = ("-x",) if extract else ()
    code, err = _run("pull", "-q", *flags, "drive:Course", str(dest))
    assert code == 0, err
    emulator.restrict_download(ids["sub/set.zip"])
    emulator.clear_requests()
    code, err = _run("pull", "-q", *flags, "drive:Course", str(dest))
    assert code == 0, err
    assert _media(emulator) == []
    new = emulator.add_file("Course/sub/new.zip", b"n" * 100, owner=TEACHER)
    emulator.restrict_download(new)
    code, err = _run("pull", "-q", *flags, "drive:Course", str(dest))
    assert code == 1
    line = _error(err)
    assert "new.zip: its owner has turned off downloading" in line, line
    assert "--exclude 'sub/new.zip'" in line
    assert _media(emulator) == []
    code, err = _run("pull", "-q", *flags, "--force", "--exclude", "sub/new.zip",
                     "drive:Course", str(dest))
    assert code == 1   # --force downloads everything again: not this one
    assert "sub/set.zip: its owner has turned off downloading" in _error(err)
