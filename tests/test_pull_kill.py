"""Process death: `drivestage pull` killed with SIGKILL mid-download resumes on the rerun;
concurrent pulls from several processes download the file once."""
from __future__ import annotations

import json
import os

import pytest

import drivestage
from _forkcli import PIPE, cli_server
from _kill import sigkill_when, wait_heard_out
from _ramdisk import tmp_path  # noqa: F401  (a fixture: hundreds of members per pull)
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from drivestage import download as dl

CHUNK = 64 * 1024


def _env(emulator):
    return dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_RETRY_BASE="0.001")


def _media(emu):
    """The media GETs in the emulator's log (a request is logged as it arrives)."""
    return [r for r in emu.requests if r.method == "GET" and r.query.get("alt") == "media"]


@pytest.mark.slow
def test_sigkill_mid_download_then_rerun_resumes(emulator, drive_env, tmp_path):
    data = os.urandom(40 * CHUNK)
    emulator.add_file("big/x.bin", data)
    entry = drivestage.connect().resolve("big/x.bin")
    dest = tmp_path / "data"
    partial = dl.partial_path(str(dest / "x.bin"), entry)
    # Slow the link down so the kill lands mid-download, whatever the machine's speed.
    emulator.faults.throttle(512 * 1024)
    proc = cli_server().popen(["pull", "drive:big/x.bin", str(dest), "-q",
                               "--chunk-size", str(CHUNK), "-j", "2"],
                              env=_env(emulator), stdout=PIPE, stderr=PIPE)
    # Killed once the partial's record (the ranges a rerun trusts) holds 4 chunks.
    sigkill_when(proc, lambda: dl.partial_size(str(dest / "x.bin"), entry) >= 4 * CHUNK)
    assert not (dest / "x.bin").exists()
    have = dl.partial_size(str(dest / "x.bin"), entry)
    assert 4 * CHUNK <= have < len(data)
    with open(dl.ranges_path(partial)) as fh:
        recorded = [tuple(r) for r in json.load(fh)["done"]]
    emulator.faults.throttle(None)
    # A range the killed pull asked for just before its kill, logged late, would read as the
    # rerun's: asked twice.
    wait_heard_out(emulator)
    emulator.clear_requests()
    rerun = cli_server().run(["pull", "drive:big/x.bin", str(dest), "--json",
                              "-q", "--chunk-size", str(CHUNK), "-j", "2"],
                             env=_env(emulator), text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["action"] == "resume" and summary["resumed_from"] == have
    assert summary["fetched"] == len(data) - have
    assert (dest / "x.bin").read_bytes() == data
    # Two streams write where their bytes belong, so the partial may have gaps: exactly the
    # bytes its record lacks are asked for again, each once.
    asked = sorted((int(a), int(b) + 1) for a, b in (
        r.headers["Range"].split("=")[1].split("-") for r in _media(emulator)))
    covered = sorted(recorded + asked)
    assert covered[0][0] == 0 and covered[-1][1] == len(data)
    assert all(x[1] == y[0] for x, y in zip(covered, covered[1:]))  # no gap, no overlap
    assert not os.path.exists(partial)


@pytest.mark.slow
def test_concurrent_processes_download_once(emulator, drive_env, tmp_path):
    data = os.urandom(8 * CHUNK)
    emulator.add_file("ddp/shard.bin", data)
    emulator.faults.latency(0.05, method="GET", path=r"alt=media")
    dest = tmp_path / "data"
    procs = [cli_server().popen(["pull", "drive:ddp/shard.bin", str(dest),
                                 "--json", "-q", "--chunk-size", str(CHUNK)],
                                env=_env(emulator), stdout=PIPE, stderr=PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    actions = sorted(json.loads(o[0])["action"] for o in outs)
    assert actions == ["cached", "cached", "download"]
    assert (dest / "shard.bin").read_bytes() == data
    assert sum(r.bytes_out for r in _media(emulator)) == len(data)


@pytest.mark.parametrize("extract", [False, True])
def test_a_kill_between_the_rename_into_place_and_the_records_removal_leaves_nothing(
        emulator, drive_env, tmp_path, extract):
    """A download is renamed into place, then its range record removed: a SIGKILL between
    the two left the record beside the staged file, and every later pull (cached, verified
    or extracting) left it there. Found by a flaky test_pull_stamps run. The state after
    that kill is made here directly: the staged file, and the record of its last version."""
    from _archives import a_zip, tree

    members = {"ds/a.bin": os.urandom(5000)}
    blob = a_zip(members)
    emulator.add_file("d/v.zip", blob)
    entry = drivestage.connect().resolve("d/v.zip")
    dest = tmp_path / "data"
    args = {"extract": extract}
    drivestage.pull("drive:d/v.zip", str(dest), **args)
    record = dl.ranges_path(dl.partial_path(str(dest / "v.zip"), entry))
    with open(record, "w") as fh:
        json.dump({"size": len(blob), "done": [[0, len(blob)]]}, fh)
    emulator.clear_requests()
    result = drivestage.pull("drive:d/v.zip", str(dest), **args)
    assert result.action == "cached" and _media(emulator) == []
    assert tree(dest) == {"v.zip": blob, **(members if extract else {})}


@pytest.mark.parametrize("extract", [False, True])
def test_a_record_half_written_by_a_killed_pull_is_removed_by_the_next(
        emulator, drive_env, tmp_path, extract):
    """A SIGKILL while a range record is written leaves atomic_write's temporary file
    (``..v.zip.<tag>.ranges.<random>.tmp``, often empty): the next pull of that file removes
    those of every version, and nothing else. Found by a flaky CI run of test_pull_stamps."""
    from _archives import a_zip, tree

    members = {"ds/a.bin": os.urandom(5000)}
    blob = a_zip(members)
    emulator.add_file("d/v.zip", blob)
    entry = drivestage.connect().resolve("d/v.zip")
    dest = tmp_path / "data"
    dest.mkdir()
    record = dl.ranges_path(dl.partial_path(str(dest / "v.zip"), entry))
    folder, base = os.path.split(record)
    left = [os.path.join(folder, f".{base}.k3j4_x9q.tmp"),           # this version's
            str(dest / "..v.zip.0123456789abcdef.ranges.zz81.tmp")]    # an older one's
    mine = [str(dest / "..v.zip.notes.tmp"), str(dest / "..w.zip.0123456789abcdef.ranges.a.tmp")]
    for path in left + mine:
        open(path, "wb").close()
    drivestage.pull("drive:d/v.zip", str(dest), extract=extract)
    assert tree(dest) == {"v.zip": blob, **(members if extract else {}),
                          **{os.path.basename(p): b"" for p in mine}}


def _many_member_zip() -> tuple[bytes, dict]:
    """A zip whose member list takes a while to check (3,000 members) behind 1.5 MiB of
    stored data at its front."""
    import io
    import zipfile

    members = {"ds/big.bin": os.urandom(3 << 19)}
    members.update({f"ds/ann/{i:05d}.xml": f"<a>{i}</a>".encode() * 20 for i in range(3000)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            zf.writestr(name, body, compress_type=zipfile.ZIP_STORED if name.endswith(".bin")
                        else zipfile.ZIP_DEFLATED)
    return buf.getvalue(), members


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["the streams' first request", "half the file in"])
def test_sigkill_while_a_zip_is_followed_then_rerun_extracts_it(emulator, local_state,
                                                                 drive_env, tmp_path, moment):
    """`pull --extract` killed while its streams fetch a zip and its member list is being
    checked (the moment they begin), or once the front of the file is in: the rerun resumes
    the partial (the zip's tail, fetched first, is in its record at once: it was not until
    the streams' first save), extracts every member exactly, and leaves no partial, record or
    temporary folder."""
    from drivestage.partials import Ranges

    data, members = _many_member_zip()
    fid = emulator.add_file("set.zip", data)
    entry = drivestage.connect().resolve("set.zip")
    dest = tmp_path / "data"
    target = str(dest / "set.zip")
    # The kill lands before the download ends: the streams' first request at a slow Drive;
    # half the file in with the byte at three quarters held (not throttled until half came:
    # 2 s of waiting at 512 KiB/s).
    hold = emulator.faults.hold(fid, len(data) * 3 // 4) if moment == "half the file in" \
        else None
    if hold is None:
        emulator.faults.throttle(512 * 1024)
    emulator.clear_requests()
    proc = cli_server().popen(["pull", "drive:set.zip", str(dest), "-x", "-q"],
                              env=_env(emulator), stdout=PIPE, stderr=PIPE)
    if moment == "the streams' first request":
        # The streams begin while the tail comes; the member list is checked once the
        # tail is in (and in the record).
        def ready() -> bool:
            record = Ranges.load(dl.partial_path(target, entry), len(data))
            return any(r.headers.get("Range", "").startswith("bytes=0-")
                       for r in _media(emulator)) and record is not None and \
                record.covers(len(data) - 22, len(data))
    else:
        ready = lambda: dl.partial_size(target, entry) >= len(data) // 2  # noqa: E731
    try:
        sigkill_when(proc, ready, f"never reached {moment}")
    finally:
        if hold is not None:
            hold.release()
    assert not os.path.exists(target) and not (dest / "ds").exists()
    emulator.faults.throttle(None)
    rerun = cli_server().run(["pull", "drive:set.zip", str(dest), "-x", "-q",
                              "--json"], env=_env(emulator), text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "Traceback" not in rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["action"] == "resume" and result["members"] >= len(members)
    # What the killed pull had (at least the zip's tail, fetched first) is not asked again.
    assert result["resumed_from"] > 0 and result["fetched"] == len(data) - result["resumed_from"]
    with open(target, "rb") as fh:
        assert fh.read() == data
    for name, body in members.items():
        with open(dest / name, "rb") as fh:
            assert fh.read() == body, name
    left = [p for p in os.listdir(dest) if p not in ("set.zip", "ds", ".drivestage")]
    assert left == [], left
    assert not os.path.exists(dl.partial_path(target, entry))
    assert not os.path.exists(dl.ranges_path(dl.partial_path(target, entry)))
