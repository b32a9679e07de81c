"""Benchmark: `drivestage pull --extract` against the Colab recipe's way, on two servers, in one run.

Builds a zip (default 1 GiB, 20,000 members: half incompressible JPEG-sized files, half small
XML, like VOC) and serves it, by id, from two servers on loopback: the project's own Drive
emulator and ``bench/plainserver.py`` (an independent Drive-v2 look-alike on ``http.server``
that sends with plain read()+write(), so no ratio rests on the emulator's ``sendfile``). For
each server, drivestage and the baseline alternate:

* the recipe (``curl`` the media URL, ``md5sum``, ``unzip -q``) vs ``drivestage pull
  drive:id:ID DEST --extract`` (peak memory of that process: bench/peak.py);
* download + verify: ``drivestage pull`` (no extract) vs ``curl`` alone;
* the rerun on the staged copy (seconds and API calls, counted by the server);
* the parts of a pull (bench/pull_phases.py): process start (``drivestage --version``), the
  download with its md5 thread, ``--extract`` on the staged copy phase by phase, and
  ``extract_archive`` called in-process on a fresh folder; md5 of the zip alone;
* streams: ``pull -j 1/2/4`` against single-stream ``curl`` on loopback and over Drive's way
  of answering (issue 12's model): every request waits ``--ttfb`` seconds before its answer
  starts (0 and 0.2 s) and each connection is held to ``--link`` MB/s (100). Media requests
  are counted by the server. Over the link, ``pull --extract`` too, against the pull (no
  extract) of the same model: where the network, not the cores, sets the pace, the
  extraction hides behind the download.

Every time is wall seconds; ``cpu`` is the child's user+sys seconds. With ``--repeat N`` the
best is shown with the range of all rounds. Goals (issues 12 and 15): pull --extract <= 0.4x
the recipe and <= 1.2x the download + verify alone; the rerun a single metadata call under a
second; peak memory < 200 MB; pull >= 2.5x single-stream curl at 0.2 s to first byte.

Extracted trees are kept until the run ends, and a run started within six minutes of an
earlier one's deletions waits first (``--settle``): on ext4 without a journal, every new file
scans past the inodes freed in the last minutes, which made whichever extraction followed a
deletion 2-4x slower (see ``bench/_disk.py``). ``--streams-only`` measures issue 12's ratio alone.

Quick check: ``python bench/pull.py --size-mib 128 --members 2000 --server plain``.
"""
from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from drivestage.sizes import parse_size  # noqa: E402
from drivestage.emulator import Emulator  # noqa: E402
from peak import run_drivestage  # noqa: E402
from plainserver import PlainDrive  # noqa: E402
from pull_report import report  # noqa: E402
from _disk import Retired, create_cost, marker, page_cost, settle, RECENT_S  # noqa: E402

MiB = 1 << 20
#: ``--fork-server``: the server (tests/_forkcli.py) each ``drivestage`` run and each
#: bench/pull_phases.py run is forked from instead of a fresh interpreter, and the file it
#: logs each child's CPU seconds in (its children are not this process's to count).
_CLI = None
_CPU_LOG = ""
_PHASES_RUN = ("import runpy, sys; sys.argv[0] = {0!r}; sys.path.insert(0, {1!r}); "
               "runpy.run_path({0!r}, run_name='__main__')")


def build_zip(path: str, size: int, members: int, seed: int = 0) -> None:
    """A VOC-like zip: members/2 stored 'JPEGs' (random bytes) and members/2 deflated XMLs."""
    rng = random.Random(seed)
    images = members // 2
    xmls = members - images
    xml_bytes = 600
    # +2%: the random sizes average slightly under the mean, and --size is a floor.
    per_image = max(1, int((size - xmls * xml_bytes) * 1.02) // max(images, 1))
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        for i in range(images):
            # Incompressible, like JPEG; +-25% so sizes vary.
            n = max(1, int(per_image * rng.uniform(0.75, 1.25)))
            zf.writestr(zipfile.ZipInfo(f"VOCdevkit/VOC2007/JPEGImages/{i:06d}.jpg",
                                        (2024, 1, 1, 0, 0, 0)), os.urandom(n),
                        compress_type=zipfile.ZIP_STORED)
        for i in range(xmls):
            body = (f"<annotation><filename>{i:06d}.jpg</filename>"
                    + "<object><name>dog</name><bndbox><xmin>1</xmin></bndbox></object>" * 8
                    + "</annotation>").encode()
            zf.writestr(zipfile.ZipInfo(f"VOCdevkit/VOC2007/Annotations/{i:06d}.xml",
                                        (2024, 1, 1, 0, 0, 0)), body[:xml_bytes],
                        compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- the two servers

class _Served:
    """One server under test: where the zip is, its knobs, what it was asked."""

    name = ""
    url = ""
    file_id = ""

    @property
    def media_url(self) -> str:
        return f"{self.url}drive/v2/files/{self.file_id}?alt=media"

    def model(self, ttfb: float, link: Optional[float]) -> None:
        """Every request waits ``ttfb`` s; each connection is held to ``link`` bytes/s."""
        raise NotImplementedError

    def counts(self) -> dict:
        """API requests so far: ``metadata``, ``media``, ``other``."""
        raise NotImplementedError


class _EmulatorServed(_Served):
    name = "emulator"

    def __init__(self, emu: Emulator, zpath: str):
        self.emu, self.url = emu, emu.url
        self.file_id = emu.add_file(f"bench/{os.path.basename(zpath)}", zpath)

    def model(self, ttfb: float, link: Optional[float]) -> None:
        self.emu.faults.clear()
        if ttfb > 0:
            self.emu.faults.latency(ttfb)
        self.emu.faults.throttle(per_connection=link)

    def counts(self) -> dict:
        out = {"metadata": 0, "media": 0, "other": 0}
        for rec in self.emu.requests:
            if rec.query.get("alt") == "media":
                out["media"] += 1
            elif rec.path.rstrip("/").endswith(f"/files/{self.file_id}"):
                out["metadata"] += 1
            else:
                out["other"] += 1
        return out


class _PlainServed(_Served):
    name = "plain"

    def __init__(self, srv: PlainDrive):
        self.srv, self.url, self.file_id = srv, srv.url, srv.file_id

    def model(self, ttfb: float, link: Optional[float]) -> None:
        self.srv.ttfb, self.srv.link = ttfb, link

    def counts(self) -> dict:
        got = self.srv.counts()
        return {k: got[k] for k in ("metadata", "media", "other")}


# ---------------------------------------------------------------------- running things

def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _children_faults() -> int:
    # Minor page faults: fresh pages, which a VM that returns free memory to its host pays
    # for again each time (see _disk.page_cost).
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt


def _forked_cpu() -> float:
    """CPU seconds of the children forked by ``--fork-server``'s server so far."""
    if not _CPU_LOG or not os.path.exists(_CPU_LOG):
        return 0.0
    with open(_CPU_LOG) as fh:
        return sum(float(line) for line in fh if line.strip())


def run(cmd: list[str], env: Optional[dict] = None, cwd: Optional[str] = None) -> dict:
    """Run one command (fails loudly): ``wall``, ``cpu`` (user+sys), ``faults`` (minor page
    faults; none counted of a forked run), ``rss`` (drivestage only: the process's own
    peak), ``stdout``.

    ``cmd`` starting with ``"drivestage"`` runs the console script with this interpreter."""
    cpu, faults = _children_cpu() + _forked_cpu(), _children_faults()
    began = time.monotonic()
    rss = 0
    if cmd[0] == "drivestage":
        proc, rss = run_drivestage(cmd[1:], env=env, cwd=cwd, cli=_CLI)
    elif _CLI is not None and cmd[:2] == [sys.executable, PHASES]:
        proc = _CLI.run(cmd[2:], env=env, cwd=cwd, text=True,
                        script=_PHASES_RUN.format(PHASES, HERE))
    else:
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - began
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"wall": wall, "cpu": _children_cpu() + _forked_cpu() - cpu,
            "faults": _children_faults() - faults,
            "rss": rss, "stdout": proc.stdout}


PHASES = os.path.join(HERE, "pull_phases.py")


def phases(args: list[str], env: dict, cwd: Optional[str] = None) -> dict:
    """bench/pull_phases.py ARGS in a child: its phase table, plus the child's wall."""
    fd, out = tempfile.mkstemp(prefix="drivestage-phases-", suffix=".json")
    os.close(fd)
    try:
        got = run([sys.executable, PHASES, "--json", out,
                   *args], env=env, cwd=cwd)
        with open(out) as fh:
            table = json.load(fh)
    finally:
        os.unlink(out)
    table["process_wall_s"] = got["wall"]
    table["process_cpu_s"] = got["cpu"]
    return table


def md5_in_process(path: str) -> float:
    """Seconds to md5 ``path`` in this process (the verify cost if it were not overlapped)."""
    began = time.monotonic()
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 * MiB), b""):
            digest.update(block)
    return time.monotonic() - began


def drop(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def machine() -> dict:
    """CPU model and the instruction sets that matter for hashing and copying."""
    model, flags = platform.processor() or "?", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and model in ("?", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    versions = {}
    for tool, arg in (("curl", "--version"), ("unzip", "-v")):
        try:
            versions[tool] = subprocess.run([tool, arg], capture_output=True,
                                            text=True).stdout.splitlines()[0][:40]
        except (OSError, IndexError):
            versions[tool] = "?"
    from drivestage import checksums

    wanted = checksums.preference()
    faster = "sha256" if checksums.rate("sha256") > checksums.rate("md5") else "md5"
    return {"checksum": faster if wanted == "auto" else wanted, "checksum_wanted": wanted,
            "md5_mbs": checksums.rate("md5") / 1e6, "sha256_mbs": checksums.rate("sha256") / 1e6,
            "cpu": model, "cores": os.cpu_count(), "avx2": "avx2" in flags,
            "avx512": "avx512f" in flags, "amx_bf16": "amx_bf16" in flags,
            "sha_ni": "sha_ni" in flags, "load": os.getloadavg()[0],
            "python": platform.python_version(), "crc32": _crc_module(), **versions}


def _crc_module() -> str:
    """Whose CRC-32 the extraction checks members with (``isal``: the [fast] extra)."""
    from drivestage.extract.copying import crc32

    return (getattr(crc32, "__module__", None) or "zlib").split(".")[0]


# ---------------------------------------------------------------------- one round

class Bench:
    """The measurements; every value is appended to a list so rounds can be compared."""

    def __init__(self, args: argparse.Namespace, zpath: str, work: str):
        self.args, self.zpath, self.work = args, zpath, work
        self.data: dict[str, dict[str, list]] = {}
        self.jobs = ["--jobs", str(args.jobs)] if args.jobs else []
        self.retire = Retired(os.path.join(work, "retired"))

    def note(self, server: str, key: str, value) -> None:
        self.data.setdefault(server, {}).setdefault(key, []).append(value)

    def env(self, s: _Served) -> dict:
        return dict(os.environ, DRIVESTAGE_API_ROOT=s.url, DRIVESTAGE_TOKEN="bench")

    def curl(self, s: _Served, out: str) -> dict:
        os.makedirs(out, exist_ok=True)
        return run(["curl", "-sS", "-f", "-H", "Authorization: Bearer bench", "-o",
                    os.path.join(out, "VOC.zip"), s.media_url])

    def pull(self, s: _Served, dest: str, *extra: str, phased: bool = False
             ) -> tuple[dict, dict]:
        """``drivestage pull`` (its run) and the API requests it made. ``phased``: through
        bench/pull_phases.py (``got["table"]``: the phases) instead of the console script
        (``got["rss"]``: its peak memory)."""
        argv = ["pull", f"drive:id:{s.file_id}", dest, "-q", *extra]
        before = s.counts()
        if phased:
            table = phases(["--", *argv], self.env(s))
            got = {"wall": table["process_wall_s"], "cpu": table["process_cpu_s"],
                   "table": table}
        else:
            got = run(["drivestage", *argv], env=self.env(s))
        after = s.counts()
        return got, {k: after[k] - before[k] for k in after}

    def round(self, s: _Served, index: int = 0) -> None:
        n, out = s.name, os.path.join(self.work, "out")
        name = os.path.basename(self.zpath)
        s.model(0.0, None)
        # The recipe, then pull --extract.
        self.retire(out)
        t_curl = self.curl(s, out)
        t_md5 = run(["md5sum", os.path.join(out, "VOC.zip")])
        t_unzip = run(["unzip", "-q", "-o", "VOC.zip"], cwd=out)
        for key, t in (("curl", t_curl), ("md5sum", t_md5), ("unzip", t_unzip)):
            self.note(n, key, t["wall"])
            self.note(n, key + "_cpu", t["cpu"])
        self.note(n, "recipe", t_curl["wall"] + t_md5["wall"] + t_unzip["wall"])
        self.note(n, "recipe_cpu", t_curl["cpu"] + t_md5["cpu"] + t_unzip["cpu"])
        self.note(n, "recipe_faults", t_curl["faults"] + t_md5["faults"] + t_unzip["faults"])
        self.retire(out)
        got, calls = self.pull(s, out, "--extract", *self.jobs)
        self.note(n, "pull_extract", got["wall"])
        self.note(n, "pull_extract_cpu", got["cpu"])
        self.note(n, "pull_extract_rss", got["rss"])
        self.note(n, "pull_extract_faults", got["faults"])
        self.note(n, "pull_extract_media", calls["media"])
        got, calls = self.pull(s, out, "--extract", *self.jobs, phased=True)
        self.note(n, "rerun", got["wall"])
        self.note(n, "rerun_calls", sum(calls.values()))
        self.note(n, "rerun_media", calls["media"])
        self.note(n, "rerun_phases", got["table"])
        # Download + verify, then curl alone.
        self.retire(out)
        got, calls = self.pull(s, out, *self.jobs, phased=True)
        self.note(n, "pull_download", got["wall"])
        self.note(n, "pull_download_cpu", got["cpu"])
        self.note(n, "download_phases", got["table"])
        drop(os.path.join(self.work, "curl"))
        self.note(n, "curl_alone", self.curl(s, os.path.join(self.work, "curl"))["wall"])
        drop(os.path.join(self.work, "curl"))
        # --extract on the staged copy (phase by phase) and the library call on a fresh
        # folder; which goes first alternates between rounds (the file system's state
        # after the previous step moves file-creation costs a lot on a shared VM).
        def cli() -> None:
            got, calls = self.pull(s, out, "--extract", *self.jobs, phased=True)
            self.note(n, "extract_staged", got["wall"])
            self.note(n, "extract_staged_cpu", got["cpu"])
            self.note(n, "extract_phases", got["table"])

        def lib() -> None:
            fresh = os.path.join(self.work, "fresh")
            self.retire(fresh)
            table = phases(["--extract-archive", os.path.join(out, name), fresh], self.env(s))
            self.note(n, "extract_lib", table["wall_s"])
            self.note(n, "extract_lib_cpu", table["cpu_s"])
            self.note(n, "extract_lib_phases", table)
            self.retire(fresh)

        for step in ((cli, lib) if index % 2 == 0 else (lib, cli)):
            step()
        self.note(n, "md5_alone", md5_in_process(os.path.join(out, name)))
        self.retire(out)
        self.note(n, "version", min(run(["drivestage", "--version"])["wall"]
                                    for _ in range(3)))
        self.streams(s)

    def streams(self, s: _Served) -> None:
        """pull -j N against single-stream curl, on loopback and over the link model."""
        n, out = s.name, os.path.join(self.work, "out")
        models = [("loopback", 0.0, None)]
        if self.args.link > 0:
            models += [(f"ttfb {t:g}", t, self.args.link * 1e6) for t in self.args.ttfb]
        for label, ttfb, link in models:
            s.model(ttfb, link)
            try:
                drop(out)
                self.note(n, f"{label}|curl", self.curl(s, out)["wall"])
                counts = [None] + [int(j) for j in self.args.streams]
                for jobs in counts:
                    drop(out)
                    extra = ["--jobs", str(jobs)] if jobs else self.jobs
                    got, calls = self.pull(s, out, *extra)
                    key = f"{label}|pull" if jobs is None else f"{label}|j{jobs}"
                    self.note(n, key, got["wall"])
                    self.note(n, key + "_media", calls["media"])
                drop(out)
                if label != "loopback" and not self.args.streams_only:
                    # Over the link the extraction can hide behind the download (issue
                    # 15's <= 1.2x goal): pull --extract against the pull just measured.
                    got, calls = self.pull(s, out, "--extract", *self.jobs)
                    self.note(n, f"{label}|x", got["wall"])
                    self.note(n, f"{label}|x_media", calls["media"])
                    self.retire(out)
            finally:
                s.model(0.0, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="zip size (default 1G)")
    ap.add_argument("--size-mib", type=int, default=None, help="zip size in MiB (overrides --size)")
    ap.add_argument("--members", type=int, default=20_000, help="members (default 20000)")
    ap.add_argument("--server", choices=("emulator", "plain", "both"), default="both",
                    help="which server(s) to measure against (default both)")
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                      "drivestage-bench"))
    ap.add_argument("--clean", action="store_true",
                    help="delete the zip (and the whole workdir) at the end")
    ap.add_argument("--jobs", type=int, default=None,
                    help="drivestage pull --jobs for the main runs (default: drivestage's)")
    ap.add_argument("--streams", default="1,2,4",
                    help="stream counts (pull -j) to compare against curl (default 1,2,4)")
    ap.add_argument("--streams-only", action="store_true",
                    help="measure only the streams against curl (issue 12's ratio)")
    ap.add_argument("--ttfb", default="0,0.2",
                    help="seconds to first byte per request in the link model (default 0,0.2)")
    ap.add_argument("--link", type=float, default=100.0,
                    help="MB/s per connection in the link model (0: skip it; default 100)")
    ap.add_argument("--settle", type=float, default=RECENT_S,
                    help="most seconds to wait at the start for an earlier run's deletions to "
                         "stop slowing down file creation (0: do not wait)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds (best and range of N; 0: only the machine's costs, after "
                         "waiting out an earlier run's deletions)")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON too")
    ap.add_argument("--fork-server", action="store_true",
                    help="fork each drivestage and pull_phases.py run from a process that "
                         "imported drivestage once (tests/_forkcli.py), not a fresh "
                         "interpreter: the tests' runs (what the numbers are is not tested; "
                         "the start, its imports and the peak memory are then not a user's)")
    ap.add_argument("--save", metavar="FILE", help="save every measurement to FILE (JSON)")
    ap.add_argument("--report", metavar="FILE",
                    help="print the report of a run saved with --save; measure nothing")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as fh:
            saved = json.load(fh)
        results = report(saved["info"], saved["data"], sys.stdout)
        if args.json:
            print(json.dumps(results))
        return
    args.streams = [s for s in args.streams.split(",") if s.strip()]
    args.ttfb = [float(t) for t in args.ttfb.split(",") if t.strip()]
    size = args.size_mib * MiB if args.size_mib else parse_size(args.size)
    os.makedirs(args.workdir, exist_ok=True)
    zpath = os.path.join(args.workdir, f"voc-{size}-{args.members}.zip")
    if not os.path.exists(zpath):
        print(f"building {zpath} ...", file=sys.stderr)
        build_zip(zpath, size, args.members)
    names = ("emulator", "plain") if args.server == "both" else (args.server,)
    # What a pip install has: drivestage byte-compiled. A working tree's modules changed
    # since their last compile would be compiled again by every command (never saved where
    # PYTHONDONTWRITEBYTECODE is set), which no user pays.
    compileall.compile_dir(os.path.join(os.path.dirname(HERE), "drivestage"), quiet=1,
                           workers=0)
    info = machine()
    work = tempfile.mkdtemp(prefix="run-", dir=args.workdir)
    if args.fork_server:
        global _CLI, _CPU_LOG
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
        from _forkcli import CPU_LOG, cli_server

        _CPU_LOG = os.path.join(work, "forked-cpu.log")
        _CLI = cli_server(dict(os.environ, **{CPU_LOG: _CPU_LOG}))
    need = 0 if args.streams_only else len(names) * args.repeat * 4 * size + 4 * size
    free = shutil.disk_usage(work).free
    if free < need:
        drop(work)
        sys.exit(f"bench/pull.py: {args.workdir} has {free / 2**30:.1f} GiB free and this run "
                 f"keeps about {need / 2**30:.1f} GiB of extracted trees until it ends: "
                 f"free some space, or use fewer rounds or a smaller --size")
    settled = settle(args.workdir, work, 0 if args.streams_only else args.settle)
    info["create_us"] = settled[-1]
    # The memory probe touches what the extraction writes at most (256 MiB for the usual
    # 1 GiB zip): a 1 MiB run (the tests') spent 3 s of its 15 faulting in 1 GiB.
    probe_mib = min(256, max(8, size >> 20))
    info["pages"] = page_cost(probe_mib)
    info["settle_us"] = settled
    info.update(zip_bytes=os.path.getsize(zpath), members=args.members, repeat=args.repeat,
                link_MB_s=args.link, ttfb=args.ttfb, streams=args.streams, jobs=args.jobs)
    try:
        with Emulator(data_dir=os.path.join(work, "drive")) as emu, \
                PlainDrive(zpath, file_id="plainVOC0001") as plain:
            served = {"emulator": lambda: _EmulatorServed(emu, zpath),
                      "plain": lambda: _PlainServed(plain)}
            servers = [served[name]() for name in names]
            bench = Bench(args, zpath, work)
            for r in range(args.repeat):
                # Which server goes first alternates: the one after pays for the memory and
                # inodes the other's round freed (slow to take again on this kind of VM).
                for s in (servers if r % 2 == 0 else servers[::-1]):
                    print(f"round {r + 1}/{args.repeat}: {s.name} ...", file=sys.stderr)
                    if args.streams_only:
                        bench.streams(s)
                    else:
                        bench.round(s, r)
        info["create_us_end"] = create_cost(work) * 1e6
        info["pages_end"] = page_cost(probe_mib)
    finally:
        # Deleting the trees makes creating files slow here for the next minutes (see
        # Retired): a run started right after this one waits for that (--settle).
        drop(work)
        if args.clean:
            drop(args.workdir)
        elif not args.streams_only:
            with open(marker(args.workdir), "w") as fh:
                fh.write(str(time.time()))
    info["load_end"] = os.getloadavg()[0]
    if args.save:
        with open(args.save, "w") as fh:
            json.dump({"info": info, "data": bench.data}, fh)
    results = report(info, bench.data, sys.stdout)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
