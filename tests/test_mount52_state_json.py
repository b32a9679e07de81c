"""mount52: drivestage's other local JSON files (a pull's stamps, its folder record, an
extraction's journals, a partial's range record, push locks' holder files, a credentials
file) nested thousands deep, or larger than any such file.

``json.loads`` raises RecursionError, no ValueError, on an array nested past the
interpreter's limit: every reader but the state files' (``state.read_json``, attack51) and
the sidecars' took only ValueError, and ended the command in a traceback (a stamp: every pull
into that DEST). Such a file is now damaged, as one that is no JSON: a stamp or record
ignored (the file hashed again, the folder resolved by its path), a journal's rows none, a
partial's ranges none (downloaded again), a holder unnamed, credentials refused in one
line. A state file of a pull is read to a bound (``statedir.OWN_MAX``): one larger is
damaged too (read whole, a sparse file of terabytes held memory in proportion). FIFOs and
links there were refused already (opened without following or waiting: checked)."""
from __future__ import annotations

import glob
import os

import pytest

from _cli import run

DEEP = "[" * 100_000


def test_a_stamp_nested_deep_is_a_damaged_one(emulator, drive_env, local_state, tmp_path):
    """On main 8704ac72: the second pull ended in a RecursionError traceback."""
    emulator.add_file("data/x.txt", b"x")
    dest = tmp_path / "dest"
    assert run("pull", "drive:data/x.txt", str(dest))[0] == 0
    (stamp,) = glob.glob(str(dest / ".drivestage" / "x.txt@*.json"))
    with open(stamp, "w") as fh:
        fh.write(DEEP)
    code, _out, err = run("pull", "drive:data/x.txt", str(dest))
    assert code == 0, err
    assert "already there, sha256 verified" in err, err
    assert (dest / "x.txt").read_bytes() == b"x"


def test_a_folder_record_nested_deep_is_a_damaged_one(emulator, drive_env, local_state,
                                                      tmp_path):
    """On main 8704ac72: the folder pull's rerun ended in a RecursionError traceback."""
    emulator.add_file("data/x.txt", b"x")
    dest = tmp_path / "dest"
    assert run("pull", "drive:data", str(dest))[0] == 0
    (record,) = glob.glob(str(dest / "data" / ".drivestage" / "folder@*.pulled"))
    with open(record, "w") as fh:
        fh.write(DEEP)
    code, _out, err = run("pull", "drive:data", str(dest))
    assert code == 0, err
    assert ": 1 file (1 already staged), 1 B, " in err, err


def test_a_journal_nested_deep_has_no_rows(tmp_path):
    """On main 8704ac72: RecursionError (a folder pull's walk of a DEST holding it)."""
    from drivestage.extract import journals

    state = tmp_path / ".drivestage"
    state.mkdir()
    (state / f"0123456789abcdef.x{journals.SUFFIX}").write_text('{"members":' + DEEP)
    fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert journals.merging(fd, str(tmp_path)) == []
    finally:
        os.close(fd)


def test_a_state_file_past_the_bound_is_not_read(tmp_path):
    """A stamp or journal larger than :data:`OWN_MAX` reads as damaged, at most the bound
    read (on main 8704ac72 ``read_own`` had no bound: read whole)."""
    from drivestage.extract import statedir

    (tmp_path / "s.json").write_bytes(b"{}" + b" " * 98)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert statedir.read_own(fd, "s.json", 100) == b"{}" + b" " * 98
        assert statedir.read_own(fd, "s.json", 99) is None
    finally:
        os.close(fd)


def test_a_partials_range_record_nested_deep_is_no_record(tmp_path):
    """On main 8704ac72: RecursionError from the pull's resume (the record is under 1 MiB,
    read)."""
    from drivestage import partials

    partial = tmp_path / "x.txt.0123.partial"
    partial.write_bytes(b"x" * 10)
    with open(partials.ranges_path(str(partial)), "w") as fh:
        fh.write(DEEP)
    assert partials.Ranges.load(str(partial), 100) is None


def test_a_lock_holder_file_nested_deep_names_no_holder(tmp_path):
    """On main 8704ac72: the waiting push's message ended in a RecursionError traceback."""
    from drivestage import lock_holders
    from drivestage.temps import namespace_tag

    (tmp_path / f"push.lock.{namespace_tag()}-{os.getppid()}.who").write_text("[" * 4096)
    assert lock_holders.described(str(tmp_path), "push.lock") == ""


@pytest.mark.parametrize("source", ["credentials file /x/key.json", "DRIVESTAGE_CREDENTIALS"])
def test_credentials_nested_deep_are_refused_in_one_line(source):
    """On main 8704ac72: a RecursionError traceback instead of the usage error."""
    from drivestage.drive.auth import from_json_text
    from drivestage.errors import UsageError

    with pytest.raises(UsageError) as got:
        from_json_text(DEEP, source)
    assert str(got.value).startswith(f"{source} is not JSON; expected a service-account "
                                     "key or a token saved by `drivestage auth login`")


def test_a_client_secrets_file_nested_deep_is_refused_in_one_line(tmp_path):
    """``drivestage auth login --client-secrets F``: on main 8704ac72 a RecursionError
    traceback."""
    from drivestage.drive.login import _client_config
    from drivestage.errors import UsageError

    secrets = tmp_path / "client.json"
    secrets.write_text(DEEP)
    with pytest.raises(UsageError) as got:
        _client_config(str(secrets))
    assert str(got.value) == f"client secrets file {str(secrets)!r} is not JSON"


def test_an_error_answer_nested_deep_is_said_in_one_line(emulator, drive_env, monkeypatch):
    """A proxy (or a broken server) answering 403 with 64 KiB of ``[``: every answer >= 400
    passes ``answers.well_formed_error``, whose ``json.loads`` raised RecursionError. On
    main 8704ac72 ``ls`` ended in that traceback; now the refusal's one line, exit 1."""
    from _proxy import Proxy, Reply

    emulator.add_file("F/a.txt", b"a")
    with Proxy(emulator.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        proxy.on("GET", r"/files", lambda status, headers, body: Reply(
            403, {"Content-Type": "application/json"}, [b"[" * 65536]))
        code, _out, err = run("ls", "drive:F")
    assert code == 1, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("Error: list drive: (the top of My Drive): permission denied "
                          "(HTTP 403: [[[["), err
