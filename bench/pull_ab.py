"""A/B of two source trees' ``drivestage pull`` in CPU time, not wall time: for a machine
shared with other work, where wall time says more about the neighbours than the code.

Serves one zip (built like ``bench/pull.py``'s: half incompressible "JPEGs", half small XML)
from ``bench/plainserver.py`` (``--server plain``) or from the Drive emulator of
``--emu-tree`` (``--server emulator``: one tree's emulator for both, so only the pull differs;
``--server emulator-ab``: each tree pulls from its own tree's emulator, the emulator's
process CPU counted too) in a process of its own, then runs ``drivestage pull
drive:id:ID DEST -q [--extract] [ARGS]`` from each tree in turn, the order alternating
every round (ABBA...), each in a fresh child whose own user+sys seconds are read from
``wait4`` (its extraction workers included: it waits for them). With ``--strace`` the
children run under ``strace -c -f`` as well, in rounds of their own, and their syscall
counts are compared (strace's own cost leaves those rounds' times out of the table).

    python bench/pull_ab.py --a /tmp/main --b . --size-mib 256 --members 5000 --rounds 6

Prints, for each tree, the median CPU and wall seconds and their spread, and the ratios
B/A of the medians and of each round's pair (the pair ran back to back).
"""
from __future__ import annotations

import argparse
import compileall
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from pull import build_zip  # noqa: E402

_RUN = ("import sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'drivestage'; "
        "from drivestage.entry import main; main()")


def _serve_emu(zpath: str, tree: str, workdir: str, tag: str) -> tuple[subprocess.Popen, int, str]:
    """The emulator of ``tree`` serving ``zpath``: (process, port, file id)."""
    data = tempfile.mkdtemp(dir=workdir, prefix=f"emu-{tag}-")
    portfile = os.path.join(data, "port")
    env = dict(os.environ, PYTHONPATH=tree)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_emu_serve.py"), zpath,
                             os.path.join(data, "drive"), portfile], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1200):
        if os.path.exists(portfile):
            port, file_id = open(portfile).read().split()
            return proc, int(port), file_id
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the emulator of {tree} did not start")


def _proc_cpu(pid: int) -> float:
    """user+sys seconds of a live process (its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve(zpath: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "plainserver.py"), zpath,
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)   # (a pull's closed connection: a trace)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.HTTPError:
            return proc     # it answers (a 404 for /)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the plain server did not start")


def _one(tree: str, argv: list[str], env: dict, strace: Optional[str]) -> dict:
    cmd = [sys.executable, "-c", _RUN, tree, *argv]
    if strace:
        cmd = ["strace", "-c", "-f", "-o", strace, *cmd]
    began = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: pull failed ({proc.returncode}):\n{err[-2000:]}")
    return {"wall": time.monotonic() - began, "user": ru.ru_utime, "sys": ru.ru_stime,
            "cpu": ru.ru_utime + ru.ru_stime, "ctx": ru.ru_nvcsw + ru.ru_nivcsw,
            "minflt": ru.ru_minflt}


def _syscalls(path: str) -> dict[str, int]:
    """strace -c's table: calls per syscall."""
    out: dict[str, int] = {}
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 5 and parts[0].replace(".", "").isdigit() and \
                    parts[-1] not in ("total",):
                try:
                    out[parts[-1]] = int(parts[3])
                except ValueError:
                    pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--a", required=True, help="tree A (a checkout of drivestage)")
    ap.add_argument("--b", required=True, help="tree B")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--no-extract", action="store_true", help="pull without --extract")
    ap.add_argument("--strace", type=int, default=0, metavar="N",
                    help="also N rounds under strace -c -f (syscall counts)")
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument("--server", choices=("plain", "emulator", "emulator-ab"), default="plain")
    ap.add_argument("--emu-tree", default=None,
                    help="the tree whose emulator serves (--server emulator; default: --a)")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "pull_ab"))
    ap.add_argument("extra", nargs="*", help="more pull arguments (after --)")
    args = ap.parse_args()
    # A SIGTERM (timeout's) ends it through its `finally`: the servers are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.makedirs(args.workdir, exist_ok=True)
    zpath = os.path.join(args.workdir, f"ab-{args.size_mib}m-{args.members}.zip")
    if not os.path.exists(zpath):
        build_zip(zpath, args.size_mib << 20, args.members)
    trees = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    for tree in trees.values():   # as installed: imports read bytecode, never compile
        compileall.compile_dir(os.path.join(tree, "drivestage"), quiet=1)
    servers: list[subprocess.Popen] = []
    where = {n: (args.port, "plainfile0001") for n in trees}
    if args.server == "plain":
        servers.append(_serve(zpath, args.port))
    elif args.server == "emulator":
        proc, port, fid = _serve_emu(zpath, os.path.abspath(args.emu_tree or args.a),
                                     args.workdir, "one")
        servers.append(proc)
        where = {n: (port, fid) for n in trees}
    else:
        for n in trees:
            proc, port, fid = _serve_emu(zpath, trees[n], args.workdir, n)
            servers.append(proc)
            where[n] = (port, fid)
    emu_of = {n: servers[i] for i, n in enumerate(trees)} if args.server == "emulator-ab" else {}
    got: dict[str, list[dict]] = {"A": [], "B": []}
    calls: dict[str, list[dict[str, int]]] = {"A": [], "B": []}
    emu_cpu: dict[str, list[float]] = {"A": [], "B": []}
    try:
        for r in range(args.rounds + args.strace):
            traced = r >= args.rounds
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for name in order:
                dest = os.path.join(args.workdir, f"dest-{name}")
                shutil.rmtree(dest, ignore_errors=True)
                state = tempfile.mkdtemp(dir=args.workdir, prefix="state-")
                port, fid = where[name]
                env = dict(os.environ, DRIVESTAGE_API_ROOT=f"http://127.0.0.1:{port}/",
                           DRIVESTAGE_TOKEN="bench", DRIVESTAGE_STATE_DIR=state,
                           PYTHONPATH=trees[name])
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                argv = ["pull", f"drive:id:{fid}", dest, "-q",
                        *([] if args.no_extract else ["--extract"]), *args.extra]
                trace = os.path.join(args.workdir, f"strace-{name}") if traced else None
                emu0 = _proc_cpu(emu_of[name].pid) if name in emu_of else 0.0
                one = _one(trees[name], argv, env, trace)
                if name in emu_of and not trace:
                    emu_cpu[name].append(_proc_cpu(emu_of[name].pid) - emu0)
                if trace:
                    calls[name].append(_syscalls(trace))
                else:
                    got[name].append(one)
                shutil.rmtree(state, ignore_errors=True)
                print(f"round {r} {name}{' (strace)' if traced else ''}: cpu {one['cpu']:.2f} s "
                      f"(user {one['user']:.2f}, sys {one['sys']:.2f}), wall {one['wall']:.2f} s",
                      flush=True)
            shutil.rmtree(os.path.join(args.workdir, "dest-A"), ignore_errors=True)
            shutil.rmtree(os.path.join(args.workdir, "dest-B"), ignore_errors=True)
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait()
    if got["A"]:
        print(f"\n{args.rounds} rounds, {args.size_mib} MiB / {args.members} members, "
              f"{'pull' if args.no_extract else 'pull --extract'} {' '.join(args.extra)}; "
              f"load now {os.getloadavg()[0]:.1f}")
        for key in ("cpu", "user", "sys", "wall", "ctx", "minflt"):
            med = {n: statistics.median(x[key] for x in v) for n, v in got.items()}
            pairs = sorted(b[key] / a[key] for a, b in zip(got["A"], got["B"]) if a[key])
            print(f"{key:5}: A {med['A']:.3f}  B {med['B']:.3f}  B/A {med['B'] / med['A']:.3f}"
                  f"  (pairs {', '.join(f'{p:.3f}' for p in pairs)})")
    if emu_cpu["A"]:
        print(f"emulator process cpu: A {statistics.median(emu_cpu['A']):.3f}  "
              f"B {statistics.median(emu_cpu['B']):.3f}")
    if calls["A"]:
        names = sorted(set().union(*calls["A"], *calls["B"]),
                       key=lambda k: -statistics.median(c.get(k, 0) for c in calls["A"]))
        print(f"\nsyscalls (median of {args.strace} traced rounds): name A B")
        for k in names[:25]:
            a = statistics.median(c.get(k, 0) for c in calls["A"])
            b = statistics.median(c.get(k, 0) for c in calls["B"])
            print(f"  {k:18} {a:10.0f} {b:10.0f}")
        print(f"  {'total':18} {statistics.median(sum(c.values()) for c in calls['A']):10.0f}"
              f" {statistics.median(sum(c.values()) for c in calls['B']):10.0f}")


if __name__ == "__main__":
    main()
