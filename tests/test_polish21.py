"""polish21: what dedupe, prune, push and a resumed-on-purpose run tell the user, and what a
dedupe does when an item vanishes under it.

- ids from the server are anybody's text: printed escaped, like titles;
- dedupe says of each newer folder what happened to it (merged, or stays and why);
- an item deleted by someone else while dedupe ran is skipped and said, the rest merged,
  exit 1; a 404 for an item that is still there stops the run as before;
- a push into a new folder applies the autosave rule to what it sends;
- prune calls best.json the sidecar of best.pt, not "json without its checkpoint";
- "resumed on purpose" is logged once the record is on Drive, not before.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

import pytest
from click.testing import CliRunner

from _messages import error_line
from _proxy import Proxy, Reply
from drivestage.cli import cli

from test_messages_dedupe import folder, live, md5, put, trashed

EVIL = "\x1b[2J\x1b]0;pwned\x07"


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def run(*args: str, api_root: str | None = None) -> tuple[int, str, str]:
    env = {"DRIVESTAGE_API_ROOT": api_root} if api_root else None
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


# --- 1. ids from a hostile server are printed escaped ----------------------------------------

def _hostile_id(proxy: Proxy, real: str) -> str:
    """Make the server call ``real`` by an id with terminal escapes in it, both ways: every
    answer says the hostile id, every request that names it reaches the emulator as ``real``."""
    fake = real + EVIL
    as_json = json.dumps(fake)[1:-1].encode()   # how an answer spells it (\u001b...)

    def answer(status: int, headers: dict, body: bytes) -> Reply:
        body = body.replace(f'"{real}"'.encode(), b'"' + as_json + b'"')
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(body))
        return Reply(status, out, [body])

    for method in ("GET", "PATCH", "POST", "PUT", "DELETE"):
        proxy.on(method, r".", answer)
    # The client's requests: the id quoted in a path or a query (%1B%5B2J...).
    from urllib.parse import quote, quote_plus
    for spelt in {quote(fake, safe=""), quote_plus(fake, safe="")}:
        proxy.rewrite(re.escape(real + spelt[len(real):]), real)
    proxy.mangle("PATCH", r".", lambda b: b.replace(as_json, real.encode()))
    proxy.mangle("PUT", r".", lambda b: b.replace(as_json, real.encode()))
    return fake


def test_a_hostile_id_is_printed_escaped_by_dedupe(emulator, store):
    """A newer folder whose id (as the server gives it) holds an ANSI escape: stdout's line
    for it and the error naming where the conflict stays print it escaped, never raw."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.txt", b"one")
    put(emulator, store, new, "a.txt", b"two")      # a conflict: the folder stays, named
    put(emulator, store, new, "b.txt", b"b")         # moved through the hostile id
    with Proxy(emulator.url) as proxy:
        fake = _hostile_id(proxy, new)
        code, out, err = run("dedupe", "drive:runs/exp", api_root=proxy.url)
    assert code == 1, err
    assert "\x1b" not in out + err and "\x07" not in out + err
    shown_id = new + "\\x1b[2J\\x1b]0;pwned\\x07"
    assert f"(id {shown_id})" in out
    assert f"(in id {shown_id})" in error_line(err)
    assert fake != shown_id
    assert live(emulator)["runs/exp/b.txt"] == [md5(b"b")]   # the merge itself went through


def test_prune_reasons_from_a_sidecar_are_printed_escaped():
    """A reason names a run (a sidecar's text, anybody's): the table escapes it too."""
    from drivestage.retention_plan import Decision, format_plan

    table = format_plan([Decision("epoch_001.pt", False, f"an older run ({EVIL})", 10, "x",
                                  "checkpoint")])
    assert "\x1b" not in table and "an older run (\\x1b[2J" in table


# --- 2. dedupe says what happened to each newer folder ---------------------------------------

def test_a_newer_folder_that_stays_is_not_said_to_be_merged(emulator, store):
    """Two newer folders: one emptied into the oldest and trashed, one kept by a conflict.
    stdout said "merged: … into the oldest" for both; the second stays, and says why."""
    root = emulator.add_folder("runs")
    old, new1, new2 = (folder(store, "exp", root) for _ in range(3))
    put(emulator, store, old, "a.txt", b"one")
    put(emulator, store, new1, "b.txt", b"b")
    put(emulator, store, new2, "a.txt", b"two")
    code, out, err = run("dedupe", "drive:runs/exp")
    assert code == 1, err
    assert out.splitlines() == [
        f"merged: drive:runs/exp (id {new1}) into the oldest (id {old})",
        f"stays: drive:runs/exp (id {new2}) beside the oldest (id {old}), partly merged: "
        "1 conflict left in it"]
    assert new1 in trashed(emulator) and new2 not in trashed(emulator)
    code, out, _ = run("dedupe", "drive:runs/exp", "--dry-run")
    assert out.splitlines() == [
        f"would stay: drive:runs/exp (id {new2}) beside the oldest (id {old}), partly merged: "
        "1 conflict left in it"]


# --- 3. an item deleted by someone else while dedupe ran -------------------------------------

def test_a_404_for_an_item_that_is_still_there_stops_the_run(emulator, store):
    """Drive answers 404 to the move of an item a files.get then shows in place (a missing
    resource key, the oldest folder gone, a server's mistake): nothing is skipped, nothing
    trashed; the run stops with Drive's 404 as before, and the item is where it was."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    there = put(emulator, store, new, "a.txt", b"still here")
    emulator.faults.inject(method="PATCH", path=there, status=404, reason="notFound")
    code, out, err = run("dedupe", "drive:runs/exp")
    assert code == 1
    assert "not found on Drive (HTTP 404" in error_line(err)
    assert "gone when dedupe came to it" not in err
    assert not trashed(emulator)
    assert [f["parents"][0]["id"] for f in emulator.files() if f["id"] == there] == [new]


# --- 4. a push into a new folder applies the autosave rule to what it sends ------------------

def _save(path, data: bytes, **side) -> None:
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps(
        {"md5": hashlib.md5(data).hexdigest(), "size": len(data), **side}))


def test_a_push_into_a_new_folder_sends_no_autosave_the_policy_retires(emulator, tmp_path):
    """Three epochs and two autosaves, each vouched for by its local sidecar, pushed into a
    folder that does not exist: the older autosave was sent (and kept beside the newer one
    until the next push). The policy retires it: not sent, as the epochs it drops."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for e, m in ((1, 0.5), (2, 0.9), (3, 0.4), (4, 0.6)):
        _save(logs / f"epoch_{e:03d}.pt", f"epoch {e}".encode(), epoch=e,
              metrics={"map50": m})
    _save(logs / "autosave_00000009.pt", b"autosave 9", epoch=4, epoch_iteration=9)
    _save(logs / "autosave_00000017.pt", b"autosave 17", epoch=4, epoch_iteration=17)
    code, _, err = run("push", str(logs), "drive:New/logs", "--keep-last", "2",
                       "--keep-best", "1", "--metric", "map50", "--mode", "max")
    assert code == 0, err
    names = sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                   and not f["mimeType"].endswith("folder"))
    assert names == ["autosave_00000017.json", "autosave_00000017.pt", "epoch_002.json",
                     "epoch_002.pt", "epoch_003.json", "epoch_003.pt", "epoch_004.json",
                     "epoch_004.pt"]
    assert "4 not sent (the policy deletes them)" in err   # epoch 1, autosave 9, their jsons
    code, _, err = run("push", str(logs), "drive:New/logs", "--keep-last", "2",
                       "--keep-best", "1", "--metric", "map50", "--mode", "max")
    assert code == 0 and "0 uploaded" in err and "pruned" not in err, err


# --- 5. prune's table: best.json is best.pt's sidecar -----------------------------------------

def test_best_json_is_called_the_sidecar_of_best_pt(emulator, store):
    """best.pt (no epoch in its name: not managed by the pattern) and its best.json: the
    table said of best.json "json without its checkpoint", best.pt being right there."""
    for e in (1, 2):
        emulator.add_file(f"Models/logs/epoch_{e:03d}.pt", f"epoch {e}".encode())
    emulator.add_file("Models/logs/best.pt", b"best")
    emulator.add_file("Models/logs/best.json", json.dumps({"epoch": 1}).encode())
    emulator.add_file("Models/logs/lost.json", json.dumps({"epoch": 7}).encode())
    code, out, err = run("prune", "drive:Models/logs", "--keep-last", "1", "--dry-run")
    assert code == 0, err
    rows = {n: line for line in out.splitlines() for n in ("best.json", "lost.json")
            if f" {n} " in line}
    assert rows["best.json"].endswith("not a checkpoint (the sidecar of best.pt, which the "
                                      "pattern does not manage)")
    assert rows["lost.json"].endswith("not a checkpoint (json without its checkpoint)")


# --- 6. "resumed on purpose" is logged once Drive holds the record ---------------------------

def test_resumed_on_purpose_is_logged_only_once_the_record_is_on_drive(emulator, tmp_path,
                                                                       local_state, caplog):
    """The log said "resumed on purpose … now dated as saved last" before the record was
    pushed: a kill (or a refused push) in between left Drive saying otherwise. Now the line
    comes once the push verified it; a push that fails logs no such line."""
    import test_attack19_branch as a19

    logs = tmp_path / "logs"
    made = a19._line(logs, [5, 10], drive=emulator)
    start = a19._decide(logs, str(made[5]))
    side_id = a19._on_drive(emulator)["epoch_005.json"][0]
    for method in ("PUT", "POST", "PATCH"):
        emulator.faults.inject(method=method, path=side_id, status=403,
                               reason="insufficientFilePermissions", times=None)
    caplog.set_level(logging.INFO, logger="trainer")
    with pytest.raises(Exception, match="could not record"):
        a19._record(logs, start)
    assert "resumed on purpose" not in caplog.text
    emulator.faults.clear()

    seen_then: list[str] = []

    class AtTheLine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "resumed on purpose" in record.getMessage():
                seen_then.append(a19._status())

    handler = AtTheLine()
    logging.getLogger("trainer").addHandler(handler)
    try:
        assert a19._record(logs, a19._decide(logs, str(made[5]))) == "epoch_005.pt"
    finally:
        logging.getLogger("trainer").removeHandler(handler)
    assert seen_then == ["epoch_005.pt"]
    assert "saved last, here and on drive:" in caplog.text


# --- 1b. the trainer prints drivestage's errors and log lines escaped too --------------------

def test_trainer_status_prints_a_hostile_id_escaped(emulator, store, tiny_config):
    """drive.logs names a folder of which Drive holds two (the error names both ids), one id
    holding an ANSI escape as the server gives it: `trainer status` printed the error raw."""
    from trainer.cli import cli as trainer_cli

    top = emulator.add_folder("Models")
    first, second = folder(store, "logs", top), folder(store, "logs", top)
    with Proxy(emulator.url) as proxy:
        _hostile_id(proxy, second)
        r = CliRunner().invoke(trainer_cli, ["status", "-c", tiny_config(
            **{"drive.logs": "drive:Models/logs"})], env={"DRIVESTAGE_API_ROOT": proxy.url})
    assert r.exit_code == 1, r.stderr
    assert "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout + r.stderr
    assert second + "\\x1b[2J" in r.stderr and first in r.stderr


def test_a_trainer_log_line_cannot_be_split_by_a_title():
    """A Drive title holding a newline, logged through the trainer's handler: it made a
    second line of its own choosing ("INFO trainer.writer: verified on Drive"), as if the
    trainer had said it. Escaped now, as drivestage's commands escape theirs."""
    import logging

    from trainer.cli import _Printable

    fmt = _Printable("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("drivestage.upload_tree", logging.WARNING, __file__, 1,
                               "could not upload %s", ("x\nINFO trainer.writer: verified\x1b[2J",),
                               None)
    assert fmt.format(record) == ("WARNING drivestage.upload_tree: could not upload "
                                  "x\\x0aINFO trainer.writer: verified\\x1b[2J")
