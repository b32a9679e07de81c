"""ux35: a new user's mistakes with drivestage, each said in one line. First `--include` /
`--exclude` globs that choose no file of the folder: they stop the pull or push, naming the
globs and what the folder holds, exit 1, nothing written (a pull said `0 files (none)` and
exited 0, made an empty DEST folder, and a script went on to train on nothing; a push made
an empty folder on Drive and said `0 uploaded`)."""
from __future__ import annotations

import os

from _cli import run
from _messages import renders, shown


def _folder(emulator) -> None:
    emulator.add_file("VOC_datasets/VOC2007.tar", b"t" * 10)
    emulator.add_file("VOC_datasets/VOC2012.tar", b"u" * 10)
    emulator.add_file("VOC_datasets/test/VOC2007test.tar", b"v" * 10)


@renders("leaves no file of … to pull")
def test_a_pull_whose_include_chooses_nothing_says_so_and_writes_nothing(
        emulator, drive_env, local_state, tmp_path):
    _folder(emulator)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:VOC_datasets", str(dest), "--extract",
                         "--include", "*.zip")
    assert code == 1, err
    assert out == ""
    assert err == ("Error: --include '*.zip' leaves no file of drive:VOC_datasets to pull (it "
                   "holds VOC2007.tar, VOC2012.tar, test/VOC2007test.tar); check the globs "
                   "(case-sensitive, matched to the path inside the folder or to the name)\n")
    shown("leaves no file of … to pull", err)
    assert not dest.exists()


def test_a_pull_whose_include_names_a_folder_says_how_to_take_its_files(
        emulator, drive_env, local_state, tmp_path):
    _folder(emulator)
    code, _out, err = run("pull", "drive:VOC_datasets", str(tmp_path / "data"),
                          "--include", "test")
    assert code == 1, err
    assert "--include chooses files: 'test/*' takes the files of that folder" in err
    code, _out, err = run("pull", "drive:VOC_datasets", str(tmp_path / "data"),
                          "--include", "test/*")
    assert code == 0, err
    assert (tmp_path / "data/VOC_datasets/test/VOC2007test.tar").read_bytes() == b"v" * 10
    assert not (tmp_path / "data/VOC_datasets/VOC2007.tar").exists()


def test_a_pull_whose_excludes_leave_nothing_names_them_and_a_few_names(
        emulator, drive_env, local_state, tmp_path):
    for i in range(8):
        emulator.add_file(f"many/f{i}.bin", b"x")
    code, _out, err = run("pull", "drive:many", str(tmp_path / "d"), "--exclude", "*.bin",
                          "--exclude", "f0*")
    assert code == 1, err
    assert err.startswith("Error: --exclude '*.bin' --exclude 'f0*' leave no file of drive:many "
                          "to pull (it holds f0.bin, f1.bin, f2.bin, f3.bin, f4.bin and 3 more)")
    assert not (tmp_path / "d").exists()


def test_an_empty_folder_pulled_without_globs_is_still_no_error(
        emulator, drive_env, local_state, tmp_path):
    emulator.add_folder("empty")
    code, _out, err = run("pull", "drive:empty", str(tmp_path / "d"))
    assert code == 0, err


@renders("leaves no file of … to push")
def test_a_push_whose_include_chooses_nothing_says_so_before_drive_is_touched(
        emulator, drive_env, local_state, tmp_path):
    logs = tmp_path / "logs"
    (logs / "runs").mkdir(parents=True)
    (logs / "last.pth").write_bytes(b"w")
    (logs / "runs" / "events.out").write_bytes(b"e")
    code, out, err = run("push", str(logs), "drive:Models/logs", "--include", "*.pt")
    assert code == 1, err
    assert err == (f"Error: --include '*.pt' leaves no file of {logs} to push (it holds "
                   "last.pth, runs/events.out); check the globs (case-sensitive, matched to "
                   "the path inside the folder or to the name)\n")
    shown("leaves no file of … to push", err)
    assert emulator.find("Models") is None
    # --delete with such a filter removes what it matches on Drive: no refusal there
    emulator.add_file("Models/logs/old.pt", b"o")
    code, _out, err = run("push", str(logs), "drive:Models/logs", "--include", "*.pt",
                          "--delete")
    assert code == 0, err
    assert emulator.find("Models/logs/old.pt") is None
    assert [f["labels"]["trashed"] for f in emulator.files() if f["title"] == "old.pt"] == [True]


# ------------------------------------------- a drive: path typed with a space or a backslash

def test_a_name_with_a_space_around_it_says_so(emulator, drive_env, local_state, tmp_path):
    """`drive: VOC_datasets` (a space after the colon) and a pasted trailing space read
    `no item named ' VOC_datasets'`: the quote was the only sign of the space."""
    emulator.add_file("VOC_datasets/voc.zip", b"z")
    code, _out, err = run("ls", "drive: VOC_datasets")
    assert code == 1
    assert err == ("Error: drive: VOC_datasets not found (no item named ' VOC_datasets' in "
                   "drive:; names are case-sensitive); the name has a space before or after "
                   "it: did you mean 'VOC_datasets'?\n")
    code, _out, err = run("pull", "drive:VOC_datasets/voc.zip ", str(tmp_path / "d"))
    assert code == 1
    assert err.endswith("; the name has a space before or after it: did you mean 'voc.zip'?\n")


def test_a_windows_style_drive_path_names_the_path_meant(emulator, drive_env, local_state,
                                                         tmp_path):
    emulator.add_file("VOC_datasets/sub/voc.zip", b"z")
    code, _out, err = run("pull", "drive:VOC_datasets\\sub\\voc.zip", str(tmp_path / "d"))
    assert code == 1
    assert err == ("Error: drive:VOC_datasets\\sub\\voc.zip not found (no item named "
                   "'VOC_datasets\\\\sub\\\\voc.zip' in drive:; names are case-sensitive); a "
                   "drive: path's folders are separated by /: drive:VOC_datasets/sub/voc.zip\n")
    assert not (tmp_path / "d").exists()


def test_a_push_making_a_folder_with_such_a_name_warns(emulator, drive_env, local_state,
                                                       tmp_path):
    """`push logs "drive:Models/logs "` made a folder `logs ` beside `logs`, silently: the
    two read the same on Drive's web page, and a resume looked in the other."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "results.csv").write_text("epoch\n")
    code, _out, err = run("push", str(logs), "drive:Models/logs ")
    assert code == 0, err
    assert err.startswith("WARNING drivestage.drive.store: drive:Models/logs  makes a folder "
                          "called 'logs ' (a space before or after its name)\n")
    assert emulator.find("Models/logs /results.csv") is not None
    code, _out, err = run("push", str(logs), "drive:Models\\runs")
    assert code == 0, err
    assert "makes a folder called 'Models\\\\runs' (a \\ in it: a drive: path's folders are " \
        "separated by /)" in err


def test_a_push_to_the_top_of_my_drive_warns(emulator, drive_env, local_state, tmp_path):
    """`push logs drive:` put results.csv and the checkpoints loose at the top of My Drive,
    beside the user's own files, without a word."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "results.csv").write_text("epoch\n")
    code, _out, err = run("push", str(logs), "drive:")
    assert code == 0, err
    assert err.startswith(
        "WARNING drivestage.cli.push: DEST drive: is the top of My Drive: SRC's files land "
        "there loose, beside everything else in it; to keep them together push into a folder, "
        "e.g. drive:logs\n")
    assert emulator.find("results.csv") is not None
    code, _out, err = run("push", str(logs), "drive:logs")
    assert code == 0 and "WARNING" not in err, err


# ------------------------------------------------------- a glob typed composed, a name not

def test_a_glob_matches_a_name_whatever_its_unicode_form(emulator, drive_env, local_state,
                                                          tmp_path):
    """`--include 'café*'` typed (é one code point) chose no `café.zip` a Mac had named
    (e and a combining accent): the refusal named a file that read the same as the glob."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "café.zip")
    emulator.add_file(f"data/{nfd}", b"mac")
    emulator.add_file("data/other.zip", b"o")
    code, _out, err = run("pull", "drive:data", str(tmp_path / "d"), "--include", "café*")
    assert code == 0, err
    assert (tmp_path / "d" / "data" / nfd).read_bytes() == b"mac"
    assert not (tmp_path / "d" / "data" / "other.zip").exists()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / nfd).write_bytes(b"mac")
    (logs / "x.txt").write_bytes(b"x")
    code, _out, err = run("push", str(logs), "drive:up", "--exclude", "café.zip")
    assert code == 0, err
    assert emulator.find(f"up/{nfd}") is None and emulator.find("up/x.txt") is not None


# ------------------------------------------------ auth login with no terminal to paste into

@renders("no code was pasted")
def test_a_login_whose_input_ends_says_why(tmp_path, local_state):
    """`drivestage auth login … < /dev/null` (nohup, a pipe) ended in click's `Aborted!`,
    exit 1: nothing said why, and no token was saved."""
    from click.testing import CliRunner

    from drivestage.cli import cli

    secrets = tmp_path / "client_secret.json"
    secrets.write_text('{"installed": {"client_id": "cid", "client_secret": "cs"}}')
    token = tmp_path / "token.json"
    res = CliRunner().invoke(cli, ["auth", "login", "--client-secrets", str(secrets),
                                   "--token-file", str(token)], input="")
    assert res.exit_code == 1
    last = res.stderr.splitlines()[-1]
    assert last == ("Error: no code was pasted: the input ended before one came (no terminal "
                    "to paste into); run `drivestage auth login` again in a terminal")
    shown("no code was pasted", last)
    assert not token.exists()


def test_a_saved_token_given_as_client_secrets_says_where_it_goes(tmp_path, local_state):
    """`auth login --client-secrets token.json` (the file an earlier login saved): `is not an
    OAuth client secret`, and nothing of what the file is or where it goes."""
    token = tmp_path / "token.json"
    token.write_text('{"type": "authorized_user", "client_id": "c", "client_secret": "s", '
                     '"refresh_token": "r"}')
    code, _out, err = run("auth", "login", "--client-secrets", str(token))
    assert code == 2
    assert err == (f"Error: '{token}' is not an OAuth client secret (expected an 'installed' "
                   "entry with client_id and client_secret): it is a token saved by a login "
                   "already; pass it with --credentials (or DRIVESTAGE_CREDENTIALS)\n")


def test_an_api_root_pasted_with_a_space_is_the_address_without_it(emulator, local_state,
                                                                   monkeypatch):
    """`export DRIVESTAGE_API_ROOT="http://127.0.0.1:8765/ "` (a space pasted with it) asked
    for `/ /drive/v2/files`: `not found on Drive (HTTP 404 …)`, no setting named."""
    emulator.add_file("VOC_datasets/voc.zip", b"z")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url + " \n")
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    code, out, err = run("ls", "drive:")
    assert code == 0, err
    assert out.rstrip().endswith("VOC_datasets/")


# ------------------------------------------------- a Windows path copied from a Windows guide

def test_a_windows_path_as_src_or_dest_is_refused_before_anything_is_written(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """`pull drive:VOC_datasets 'C:\\Users\\me\\data'` made a folder of that name here."""
    emulator.add_file("VOC_datasets/voc.zip", b"z")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _out, err = run("pull", "drive:VOC_datasets", "C:\\Users\\me\\data")
    assert code == 2
    assert err == ("Error: DEST C:\\Users\\me\\data is a Windows path, and this machine's paths "
                   "are written /content/data or ./data: give one of this machine's\n")
    code, _out, err = run("push", "D:/logs", "drive:Models/logs")
    assert code == 2 and err.startswith("Error: SRC D:/logs is a Windows path"), err
    code, _out, err = run("mirror", "C:\\logs", "drive:Models/logs", "--every", "5")
    assert code == 2 and err.startswith("Error: SRC C:\\logs is a Windows path"), err
    assert os.listdir(here) == []
    assert emulator.find("Models") is None


# ------------------------------------------------- credentials named where they were not found

def _no_google_credentials(monkeypatch, tmp_path):
    import sys

    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE", "DRIVESTAGE_DEBUG", "GOOGLE_APPLICATION_CREDENTIALS",
                 "COLAB_RELEASE_TAG", "GCE_METADATA_HOST", "GCE_METADATA_IP",
                 "GCE_METADATA_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


def test_a_token_file_variable_naming_no_file_is_named(monkeypatch, tmp_path, local_state):
    """`DRIVESTAGE_TOKEN_FILE=~/tok.json` with no file there: the list of ways to log in,
    with no word of the variable the user had set."""
    _no_google_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("DRIVESTAGE_TOKEN_FILE", str(tmp_path / "tok.json"))
    code, _out, err = run("ls", "drive:")
    assert code == 1
    assert err.startswith("Error: no Google Drive credentials found. Use one of:\n")
    assert err.endswith(f"\nDRIVESTAGE_TOKEN_FILE is {tmp_path / 'tok.json'}, where there is "
                        "no file: a login saves its token there\n")


def test_a_file_name_in_drivestage_credentials_says_where_a_file_goes(monkeypatch, tmp_path,
                                                                      local_state):
    _no_google_credentials(monkeypatch, tmp_path)
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    monkeypatch.setenv("DRIVESTAGE_CREDENTIALS", str(key))
    code, _out, err = run("ls", "drive:")
    assert code == 2
    assert err == ("Error: DRIVESTAGE_CREDENTIALS is not JSON; expected a service-account key "
                   "or a token saved by `drivestage auth login`; it holds the JSON itself, not "
                   f"a file's name: pass --credentials {key}, or set "
                   f"DRIVESTAGE_CREDENTIALS=\"$(cat {key})\"\n")
