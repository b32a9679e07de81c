"""Drive-side features of issue 12 attacked as a hostile user, server or sharer would: ids and
resource keys that are not what they claim, shortcuts that lie or lead elsewhere, error
answers that are not Drive's. Each through the real CLI and stack against the emulator (and
the mutating proxy of tests/_proxy.py for answers the emulator would never give)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from drivestage import paths
from drivestage.cli import cli
from drivestage.errors import UsageError
from _cli import run
from _envs import env_user_lines  # noqa: F401  (a fixture)

TEACHER = "teacher@school.edu"


def error_line(code, err):
    assert code == 1, err
    lines = [line for line in err.split("\n") if line.strip()]
    assert lines[-1].startswith("Error: ") and \
        sum(line.startswith("Error:") for line in lines) == 1, err
    assert "Traceback" not in err
    return lines[-1]


# --------------------------------------------------------------------------- ids and keys

@pytest.mark.parametrize("spec", [
    "drive:id:abc\n",
    "drive:id:abc\n/x",
    "drive:id:abc:KEY\n",
    "https://drive.google.com/open?id=abc%0A",
    "https://drive.google.com/file/d/abc/view?resourcekey=K%0A",
    "https://drive.google.com/drive/folders/abc%0A",
])
def test_an_id_or_resource_key_with_a_trailing_newline_is_refused(spec):
    """``$`` matches before a final newline: an id or key ending in one passed the check and
    went into a URL or the X-Goog-Drive-Resource-Keys header."""
    with pytest.raises(UsageError):
        paths.parse(spec)


def test_a_shortcut_whose_target_resource_key_is_not_a_key_never_reaches_a_header(
        emulator, env, tmp_path):
    """A hostile sharer's (or server's) ``targetResourceKey`` with a CRLF in it must not be
    sent as a header line (header injection) nor crash the pull with a traceback."""
    data = b"weights"
    target = emulator.add_file("x/w.pth", data)
    short = emulator.add_shortcut("Models/w.pth", target)
    rec = emulator.store.get(short)
    details = dict(rec["shortcut"], targetResourceKey="k\r\nX-Evil: 1")
    emulator.store.update(short, shortcut=details)
    code, _, err = run("pull", "-q", "drive:Models/w.pth", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d" / "w.pth").read_bytes() == data
    sent = [r.headers for r in emulator.requests]
    assert not any("X-Evil" in h or "x-evil" in h for h in sent)
    assert not any("\n" in v or "\r" in v for h in sent for v in h.values())


def test_a_listed_resource_key_that_is_not_a_key_never_reaches_a_header(emulator, env,
                                                                         tmp_path):
    folder = emulator.add_folder("course")
    emulator.add_file("course/a.txt", b"a")
    emulator.store.update(folder, resource_key="k\r\nX-Evil: 1", link_role="reader")
    code, _, err = run("pull", "-q", "drive:course", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/course/a.txt").read_bytes() == b"a"
    assert not any("\n" in v or "\r" in v for r in emulator.requests for v in r.headers.values())


# --------------------------------------------------------------------------- error bodies

@pytest.mark.parametrize("body", [
    b'{"error": {"code": 403, "errors": {"x": 1}}}',
    b'{"error": {"code": 403, "errors": 5, "message": "no"}}',
    b'{"error": {"code": 403, "errors": [], "message": {"a": 1}}}',
    b'{"error": {"code": 403, "errors": [{"reason": ["a", "b"]}]}}',
    b'{"error": {"code": 403, "errors": [{"reason": "somethingNew", "message": "new"}]}}',
    b'{"error": "forbidden"}',
    b"[1, 2]",
    b"null",
    b"",
    b"<html><body>" + b"<p>Forbidden</p>" * 200000 + b"</body></html>",
])
@pytest.mark.parametrize("command", ["ls", "pull"])
def test_a_403_whatever_its_body_is_one_line(emulator, env, tmp_path, body, command):
    emulator.add_file("d/a.bin", b"abc")
    emulator.faults.inject(path=r"/files", status=403, body=body,
                           content_type="application/json", times=None)
    args = ("ls", "drive:d") if command == "ls" else ("pull", "-q", "drive:d/a.bin",
                                                       str(tmp_path / "d"))
    code, _, err = run(*args)
    line = error_line(code, err)
    assert len(line) < 1000, line[:2000]
    assert "403" in line


# --------------------------------------------------------------------------- shortcuts

def _titles(emulator, owner=None):
    return sorted(f["title"] for f in emulator.files()
                  if not f.get("labels", {}).get("trashed"))


def test_push_delete_never_removes_what_sits_behind_a_folder_shortcut_in_dest(
        emulator, env, tmp_path):
    """DEST holds a shortcut to a teacher's folder; SRC has a folder of that name. --delete
    removes what is not in SRC from DEST: the teacher's files are not in DEST, they are in
    the teacher's folder, and must stay (in place, not in the trash)."""
    theirs = emulator.add_folder("Data", owner=TEACHER, shared_with_me="writer")
    kept = emulator.add_file("Data/teacher.txt", b"teacher", owner=TEACHER)
    emulator.add_folder("course")
    emulator.add_shortcut("course/data", theirs)
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "data" / "mine.txt").write_bytes(b"mine")
    (src / "a.txt").write_bytes(b"a")
    code, _, err = run("push", str(src), "drive:course", "--delete")
    assert code == 0, err
    assert not emulator.store.get(kept)["trashed"]
    assert emulator.find("Data/teacher.txt", owner=TEACHER) is not None
    assert emulator.read_bytes(kept) == b"teacher"


def test_push_delete_of_a_folder_shortcut_removes_the_shortcut_only(emulator, env, tmp_path):
    theirs = emulator.add_folder("Data", owner=TEACHER, shared_with_me="writer")
    kept = emulator.add_file("Data/teacher.txt", b"teacher", owner=TEACHER)
    emulator.add_folder("course")
    short = emulator.add_shortcut("course/data", theirs)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    code, _, err = run("push", str(src), "drive:course", "--delete")
    assert code == 0, err
    assert emulator.find("Data/teacher.txt", owner=TEACHER) is not None
    assert emulator.read_bytes(kept) == b"teacher"
    assert not emulator.store.get(theirs)["trashed"]
    assert emulator.store.get(short)["trashed"]


def test_a_file_shortcut_as_a_folder_of_the_push_destination_is_one_line(emulator, env,
                                                                          tmp_path):
    target = emulator.add_file("x/w.pth", b"w")
    emulator.add_shortcut("Models/w.pth", target)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    code, _, err = run("push", str(src), "drive:Models/w.pth/run1")
    assert code in (1, 2), err
    assert "Traceback" not in err and "w.pth" in err
    assert emulator.read_bytes(target) == b"w"
    assert emulator.find("Models/w.pth/run1") is None


def test_a_push_through_a_folder_shortcut_whose_target_is_in_the_trash(emulator, env, tmp_path):
    theirs = emulator.add_folder("Runs", owner=TEACHER, shared_with_me="writer")
    emulator.add_shortcut("Runs", theirs)
    emulator.store.set_trashed(theirs, True)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    code, _, err = run("push", str(src), "drive:Runs/me")
    line = error_line(code, err)
    assert "drive:Runs" in line and "shortcut" in line


def test_a_cycle_through_two_folder_shortcuts_in_a_pull(emulator, env, tmp_path):
    a = emulator.add_folder("A")
    b = emulator.add_folder("B")
    emulator.add_file("A/a.txt", b"a")
    emulator.add_shortcut("A/toB", b)
    emulator.add_shortcut("B/toA", a)
    code, _, err = run("pull", "-q", "drive:A", str(tmp_path / "d"))
    line = error_line(code, err)
    assert "toA" in line and "never end" in line


def test_a_cycle_through_folder_shortcuts_in_a_push_destination(emulator, env, tmp_path):
    a = emulator.add_folder("A")
    emulator.add_shortcut("A/loop", a)
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.txt").write_bytes(b"x")
    code, _, err = run("push", str(src), "drive:A/loop/loop/loop/run")
    assert code == 0, err  # a path is finite: it lands in A/run, once
    assert emulator.read_bytes(emulator.find("A/run/x.txt")["id"]) == b"x"


def test_a_shortcut_retargeted_between_two_pulls_is_staged_again(emulator, env, tmp_path):
    """The stamp says the shortcut was staged; the shortcut now points at another file (or
    its target's bytes changed): the rerun must fetch the new bytes, not say "staged"."""
    first = emulator.add_file("x/one.bin", b"one")
    second = emulator.add_file("x/two.bin", b"two-two")
    short = emulator.add_shortcut("Models/w.bin", first)
    dest = tmp_path / "d"
    code, _, err = run("pull", "-q", "drive:Models/w.bin", str(dest))
    assert code == 0 and (dest / "w.bin").read_bytes() == b"one", err
    details = dict(emulator.store.get(short)["shortcut"], targetId=second)
    emulator.store.update(short, shortcut=details)
    code, _, err = run("pull", "-q", "drive:Models/w.bin", str(dest))
    assert code == 0, err
    assert (dest / "w.bin").read_bytes() == b"two-two"


def test_a_folder_shortcuts_target_changing_between_listing_and_download_is_caught(
        emulator, env, tmp_path):
    """The target's bytes change after the listing (md5 taken) and before the download: the
    md5 check must refuse the new bytes under the old md5, and nothing stays under the final
    name."""
    from tests._proxy import Proxy, Reply

    target = emulator.add_file("x/data.bin", b"A" * 4000)
    emulator.add_shortcut("course/data.bin", target)
    with Proxy(emulator.url) as proxy:
        def swap(status, headers, body):
            return Reply(status, headers, [b"B" * len(body)])
        proxy.on("GET", r"alt=media", swap)
        env_ = {"DRIVESTAGE_API_ROOT": proxy.url}
        res = CliRunner(env=env_).invoke(cli, ["pull", "-q", "drive:course",
                                               str(tmp_path / "d")], catch_exceptions=False)
    line = error_line(res.exit_code, res.stderr)
    assert "do not match Drive" in line
    assert not (tmp_path / "d/course/data.bin").exists()


def test_shared_with_me_titles_with_control_characters_and_slashes(emulator, env, tmp_path):
    evil = "\x1b[2J\x1b[31mboom\u202e"
    emulator.add_folder(evil, owner=TEACHER, shared_with_me=True)
    emulator.add_file(f"{evil}/a.txt", b"a", owner=TEACHER)
    emulator.add_folder("x", owner=TEACHER)
    slash = emulator.add_file("x/a-b.txt", b"slash", owner=TEACHER)
    emulator.store.update_meta(slash, {"title": "a/b.txt"})
    emulator.share(slash)
    emulator.add_file("x/c.txt", b"c", owner=TEACHER, shared_with_me=True)
    emulator.add_file("y/c.txt", b"c2", owner=TEACHER, shared_with_me=True)
    code, out, err = run("ls", "drive:shared-with-me/")
    assert code == 0, err
    assert "\x1b" not in out + err and "\u202e" not in out + err
    code, out, err = run("pull", "-q", "drive:shared-with-me/c.txt", str(tmp_path / "d"))
    line = error_line(code, err)
    assert "2 items" in line
    code, out, err = run("ls", f"drive:shared-with-me/{evil}")
    assert code == 0, err
    assert "\x1b" not in out + err
    code, out, err = run("pull", "-q", f"drive:shared-with-me/{evil}/nothere",
                         str(tmp_path / "d"))
    line = error_line(code, err)
    assert "\x1b" not in err and "\u202e" not in err
    code, out, err = run("pull", "-q", "drive:shared-with-me/", str(tmp_path / "e"))
    assert "\x1b" not in err and "Traceback" not in err
    assert not any(p.name == "b.txt" for p in (tmp_path / "e").rglob("*"))


def test_two_shortcuts_to_one_folder_are_refused_before_the_walk_multiplies(emulator, env,
                                                                           tmp_path):
    """A hostile sharer's folder: each level holds two shortcuts to the next. Without a
    check a pull of depth n lists 2^n folders and writes 2^n copies (depth 20: a million)."""
    depth = 12
    ids = [emulator.add_folder(f"L{i}") for i in range(depth + 1)]
    emulator.add_file(f"L{depth}/leaf.txt", b"x")
    for i in range(depth):
        emulator.add_shortcut(f"L{i}/a", ids[i + 1])
        emulator.add_shortcut(f"L{i}/b", ids[i + 1])
    code, _, err = run("pull", "-q", "drive:L0", str(tmp_path / "d"))
    line = error_line(code, err)
    assert line == ("Error: drive:L0/b is the folder drive:L0/a again (a shortcut to it, or "
                    "a folder with two parents): a folder pull takes each folder once. Leave "
                    "one out (pull --exclude 'b').")
    assert emulator.api_calls("files.list") < 10
    assert not (tmp_path / "d" / "L0").exists() or \
        not any(p.is_file() for p in (tmp_path / "d").rglob("leaf.txt"))
    # One shortcut to a folder the tree holds anyway, left out: the rest is pulled.
    emulator2_dest = tmp_path / "e"
    for i in range(depth):
        short = emulator.find(f"L{i}/b")["id"]
        emulator.store.set_trashed(short, True)
    code, _, err = run("pull", "-q", "drive:L0", str(emulator2_dest))
    assert code == 0, err
    assert (emulator2_dest / "L0" / "/".join(["a"] * depth) / "leaf.txt").read_bytes() == b"x"


# --------------------------------------------------------------------------- sharing links

@pytest.mark.parametrize("spec", [
    "https://drive.google.com.evil.com/file/d/abc/view",
    "https://drive.google.com@evil.com/file/d/abc/view",
    "https://evil.com/?u=https://drive.google.com/file/d/abc/view",
    "ftp://drive.google.com/file/d/abc",
    "https://drive.google.com/file/d/abc%2F..%2Fxyz/view",
    "https://drive.google.com/file/d/../../x/view",
    "https://drive.google.com/file/d/\uff41\uff42\uff43/view",
    "https://drive.google.com/open?id=abc&id=../x",
    "https://drive.google.com/file/d/abc/view?resourcekey=a%2Fb",
    "https://drive.google.com/file/d/abc/view?resourcekey=%E2%80%AE",
    "https://drive.google.com/",
    "drive:id:abc:",
    "drive:id:abc:k:k2",
    "drive:id::k",
    "drive:id:" + "a" * 20000,
    "drive:id:abc:" + "k" * 20000,
])
def test_a_hostile_link_or_id_is_one_line_and_asks_no_other_host(emulator, env, tmp_path, spec):
    code, out, err = run("pull", "-q", spec, str(tmp_path / "d"))
    assert code in (1, 2), (code, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert sum(line.startswith("Error:") for line in lines) == 1, err
    assert len(lines[-1]) < 600, lines[-1][:700]
    assert all(set(r.path.split("?")[0]) <= set("/abcdefghijklmnopqrstuvwxyz"
                                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
               for r in emulator.requests)
    assert not list(tmp_path.glob("d/**/*"))


# --------------------------------------------------------------------------- secrets

SECRET = "ya29.s3cr3t-T0KEN-value"


@pytest.mark.parametrize("status", [401, 403, 404, 400, 503])
@pytest.mark.parametrize("debug", [False, True])
def test_a_server_echoing_the_token_never_gets_it_printed(emulator, env, monkeypatch, tmp_path,
                                                         status, debug):
    """A server (or a proxy in front of it) whose error message repeats the request's
    Authorization header: the token must not reach the terminal, a log or --json."""
    monkeypatch.setenv("DRIVESTAGE_TOKEN", SECRET)
    if debug:
        monkeypatch.setenv("DRIVESTAGE_DEBUG", "1")
    emulator.add_file("d/a.bin", b"abc")
    emulator.faults.inject(path=r"/files", status=status, reason="badRequest",
                           message=f"Invalid Credentials: Bearer {SECRET}", times=None)
    res = CliRunner().invoke(cli, ["pull", "--json", "drive:d/a.bin", str(tmp_path / "d")])
    assert res.exit_code != 0
    shown = res.stdout + res.stderr + "".join(map(str, [res.exception]))
    assert SECRET not in shown and "s3cr3t" not in shown, shown[-800:]


def test_a_download_answer_echoing_the_token_never_gets_it_printed(emulator, env, monkeypatch,
                                                                   tmp_path):
    from tests._proxy import Proxy, Reply

    emulator.add_file("d/a.bin", b"abc")
    with Proxy(emulator.url) as proxy:
        def echo(status, headers, body):
            data = json.dumps({"error": {"code": 403, "message": f"bad Bearer {SECRET}",
                                         "errors": [{"reason": "forbidden",
                                                     "message": SECRET}]}}).encode()
            return Reply(403, {"Content-Type": "application/json",
                               "Content-Length": str(len(data))}, [data])
        proxy.on("GET", r"alt=media", echo)
        res = CliRunner(env={"DRIVESTAGE_API_ROOT": proxy.url, "DRIVESTAGE_TOKEN": SECRET}
                        ).invoke(cli, ["pull", "--json", "drive:d/a.bin", str(tmp_path / "d")])
    assert res.exit_code == 1 and "permission denied" in res.stderr, res.stderr
    assert SECRET not in res.stdout + res.stderr and "<redacted>" in res.stderr


def test_push_delete_into_a_shortcut_to_the_top_of_a_drive_is_refused(emulator, env, tmp_path):
    """`push EMPTY drive: --delete` is refused; a shortcut to the top of My Drive (or of a
    shared drive) named as DEST must be too, not empty the drive it leads to."""
    emulator.add_file("keep/a.txt", b"a")
    emulator.add_shortcut("course/top", emulator.root_id())
    team = emulator.add_shared_drive("Team")
    emulator.add_file("b.txt", b"b", drive_id=team)
    emulator.add_shortcut("course/team", team)
    empty = tmp_path / "empty"
    empty.mkdir()
    before = _titles(emulator)
    for dest in ("drive:course/top", "drive:course/team"):
        code, _, err = run("push", str(empty), dest, "--delete")
        line = error_line(code, err) if code == 1 else err
        assert code in (1, 2) and "refusing --delete into" in line, err
    assert _titles(emulator) == before


def test_a_push_into_a_folder_shared_read_only_through_a_shortcut_is_one_line(emulator, env,
                                                                              tmp_path):
    theirs = emulator.add_folder("Runs", owner=TEACHER, shared_with_me="reader")
    emulator.add_shortcut("Runs", theirs)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    code, _, err = run("push", str(src), "drive:Runs/me")
    line = error_line(code, err)
    assert "drive:Runs is shared with you read-only" in line
    assert emulator.find("Runs/me", owner=TEACHER) is None


def test_titles_with_control_characters_in_warnings_are_escaped(emulator, env, tmp_path):
    evil = "\x1b]0;owned\x07\x1b[31mnotes\u202e"
    emulator.add_file(f"course/{evil}", b"", mime_type="application/vnd.google-apps.document")
    emulator.add_file("course/ok.txt", b"ok")
    code, out, err = run("pull", "drive:course", str(tmp_path / "d"))
    assert code == 0, err
    assert "skipping" in err
    assert "\x1b" not in out + err and "\x07" not in out + err and "\u202e" not in out + err


def test_a_folder_shortcut_to_a_trashed_folder_in_a_folder_pull(emulator, env, tmp_path):
    theirs = emulator.add_folder("Data", owner=TEACHER, shared_with_me=True)
    emulator.add_file("Data/x.bin", b"x", owner=TEACHER)
    emulator.add_shortcut("course/data", theirs)
    emulator.add_file("course/ok.txt", b"ok")
    emulator.store.set_trashed(theirs, True)
    code, _, err = run("pull", "-q", "drive:course", str(tmp_path / "d"))
    line = error_line(code, err)
    assert line.startswith("Error: drive:course/data is a shortcut to an item in the trash")
    assert "only its owner (" in line  # the teacher's folder: only they can restore it
    code, _, err = run("pull", "-q", "drive:course", str(tmp_path / "d"), "--exclude", "data")
    assert code == 0 and (tmp_path / "d/course/ok.txt").read_bytes() == b"ok"


def test_a_target_unshared_between_listing_and_download_is_one_line(emulator, env, tmp_path):
    from tests._proxy import Proxy

    target = emulator.add_file("x/data.bin", b"D" * 3000, owner=TEACHER, shared_with_me=True)
    emulator.add_shortcut("course/data.bin", target)
    with Proxy(emulator.url) as proxy:
        # The first media request finds the target unshared (the emulator then answers 404).
        state = {"done": False}
        original = proxy._rule_for

        def rule_for(method, path):
            if "alt=media" in path and not state["done"]:
                state["done"] = True
                emulator.unshare(target)
            return original(method, path)
        proxy._rule_for = rule_for
        res = CliRunner(env={"DRIVESTAGE_API_ROOT": proxy.url}).invoke(
            cli, ["pull", "-q", "drive:course", str(tmp_path / "d")], catch_exceptions=False)
    line = error_line(res.exit_code, res.stderr)
    assert "drive:course/data.bin" in line and "not found" in line, line
    assert not (tmp_path / "d/course/data.bin").exists()


def test_an_item_listed_twice_in_shared_with_me_is_one_item(emulator, env, tmp_path):
    from tests._proxy import Proxy, Reply

    emulator.add_file("x/c.txt", b"c", owner=TEACHER, shared_with_me=True)
    with Proxy(emulator.url) as proxy:
        def twice(status, headers, body):
            obj = json.loads(body)
            obj["items"] = obj.get("items", []) * 2
            data = json.dumps(obj).encode()
            return Reply(status, {"Content-Type": "application/json",
                                  "Content-Length": str(len(data))}, [data])
        proxy.on("GET", r"sharedWithMe", twice)
        res = CliRunner(env={"DRIVESTAGE_API_ROOT": proxy.url}).invoke(
            cli, ["pull", "-q", "drive:shared-with-me/c.txt", str(tmp_path / "d")],
            catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
        assert (tmp_path / "d/c.txt").read_bytes() == b"c"
        res = CliRunner(env={"DRIVESTAGE_API_ROOT": proxy.url}).invoke(
            cli, ["ls", "drive:shared-with-me/"], catch_exceptions=False)
        assert res.exit_code == 0 and res.stdout.count("c.txt") == 1, res.stdout
