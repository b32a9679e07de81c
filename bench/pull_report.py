"""Printing bench/pull.py's numbers: per server, then side by side against the goals."""
from __future__ import annotations

from typing import Any, Optional, TextIO

MiB = 1 << 20


def _best(values: list) -> float:
    return min(values)


def _fmt_range(values: list, unit: str = "", digits: int = 2) -> str:
    """``best`` or ``best (lo-hi)`` when rounds differ."""
    best = min(values)
    text = f"{best:.{digits}f}{unit}"
    if len(values) > 1 and max(values) - best > 10 ** -digits:
        text += f" ({best:.{digits}f}-{max(values):.{digits}f})"
    return text


def _ratio(num: list, den: list) -> float:
    """The ratio of the best times (each side's fastest round)."""
    return min(num) / min(den)


def _fmt_ratio(num: list, den: list) -> str:
    """``best/best`` and, over several rounds, the range of the ratio round by round."""
    text = f"{_ratio(num, den):.2f}x"
    per_round = [a / b for a, b in zip(num, den)]
    if len(per_round) > 1:
        text += f" (rounds {min(per_round):.2f}-{max(per_round):.2f})"
    return text


def _phase(table: dict, label: str) -> float:
    """Total wall seconds of every phase row with this label, at any depth."""
    return sum(r["wall_s"] for r in table["phases"] if r["path"][-1] == label)


def _main_other(table: dict) -> float:
    """Wall seconds of main() outside the phases it called directly (click, lazy imports of
    the pull machinery, printing the result)."""
    top = [r for r in table["phases"] if r["path"] == ["main()"]]
    kids = [r for r in table["phases"] if len(r["path"]) == 2 and r["path"][0] == "main()"]
    return (top[0]["wall_s"] - sum(r["wall_s"] for r in kids)) if top else 0.0


def _overhead(table: dict) -> str:
    """The process's time outside download and extraction, item by item."""
    items = [("interpreter start+exit", table["process_wall_s"] - table["since_start_s"]),
             ("imports (all a pull uses)", table["imports_s"]), ("main() other (click, lazy imports)",
                                               _main_other(table))]
    for name, label in (
            ("open the store", "open the store (discovery document, credentials)"),
            ("find SRC", "find SRC (stamp + one stat, or a resolve)"),
            ("lock", "pull lock: acquire"), ("stamp read", "stamp: read"),
            ("stamp write", "stamp: write"), ("target + members intact",
                                              "look at the target (stat, partial)"),
            ("space check", "disk-space check (download)")):
        items.append((name, _phase(table, label)))
    return ", ".join(f"{name} {sec:.2f}" for name, sec in items if sec >= 0.005)


def _best_table(tables: list) -> dict:
    return min(tables, key=lambda t: t.get("process_wall_s", t["wall_s"]))


_EXTRACT_STEPS = [
    ("list", "read the member list"), ("validate", "validate members"),
    ("check vs DEST", "check members against DEST (links, folders)"),
    ("stale temps", "look for stale temporary folders"),
    ("space", "disk_usage (free-space checks)"),
    ("write members", "write members into the temporary folder"),
    ("record", "record what was written (lstat each)"),
    ("merge lock", "merge lock: acquire"),
    ("merge", "merge the temporary folder into DEST"), ("temp rmtree", "rmtree"),
]


def _extract_steps(table: dict) -> str:
    return ", ".join(f"{name} {_phase(table, label):.2f}" for name, label in _EXTRACT_STEPS)


def _parts(d: dict, out: TextIO) -> dict:
    """The parts of a pull, from bench/pull_phases.py's tables (the fastest round's)."""
    dl = _best_table(d["download_phases"])
    ex = _best_table(d["extract_phases"])
    lib = _best_table(d["extract_lib_phases"])
    rr = _best_table(d["rerun_phases"])
    version = _best(d["version"])
    download = _phase(dl, "download() = fetch + write + hash")
    tail = _phase(dl, "wait for the hash thread after the last write")
    ex_step = _phase(ex, "extract step of pull (incl. stamp rows)")
    ex_extract = _phase(ex, "extract()")
    ex_stamp_rows = ex_step - ex_extract - _phase(ex, "remove the previous version's members")
    lib_extract = _phase(lib, "extract()")
    out.write("  parts (wall s, the fastest round; bench/pull_phases.py):\n")
    out.write(f"    process start (drivestage --version)        {version:6.2f}\n")
    out.write(f"    pull, no --extract (whole process)          {dl['process_wall_s']:6.2f} = "
              f"download() {download:.2f} + the rest {dl['process_wall_s'] - download:.2f}\n")
    out.write(f"      the rest: {_overhead(dl)}\n")
    out.write(f"      verify: hash thread {dl['md5_thread_cpu_s']:.2f} CPU s beside the download, "
              f"{tail:.2f} s waited for it after the last write; md5 of the zip alone "
              f"{_best(d['md5_alone']):.2f} s\n")
    out.write(f"    --extract on the staged copy (whole process) {ex['process_wall_s']:6.2f} = "
              f"extract() {ex_extract:.2f} + stamp rows {ex_stamp_rows:.2f} + the rest "
              f"{ex['process_wall_s'] - ex_step:.2f}\n")
    out.write(f"      extract(): {_extract_steps(ex)}\n")
    out.write(f"      the rest: {_overhead(ex)}\n")
    out.write(f"    rerun on the staged copy (whole process)    {rr['process_wall_s']:6.2f}: "
              f"{_overhead(rr)}\n")
    out.write(f"    extract_archive in-process, fresh folder    {lib_extract:6.2f}\n")
    out.write(f"      extract(): {_extract_steps(lib)}\n")
    missing = sorted(set(dl["missing"]) | set(ex["missing"]) | set(rr["missing"]))
    if missing:
        out.write(f"    (phases not found, code moved? {', '.join(missing)})\n")
    return {"version_s": version, "download_s": download, "pull_rest_s": dl["process_wall_s"] - download,
            "md5_thread_cpu_s": dl["md5_thread_cpu_s"], "md5_tail_s": tail,
            "md5_alone_s": _best(d["md5_alone"]), "extract_staged_s": ex["process_wall_s"],
            "extract_staged_extract_s": ex_extract, "stamp_rows_s": ex_stamp_rows,
            "extract_lib_s": lib_extract, "imports_s": dl["imports_s"],
            "rerun_process_s": rr["process_wall_s"], "pull_overhead": _overhead(dl)}


def _streams(d: dict, info: dict, out: TextIO) -> dict:
    labels = ["loopback"] + ([f"ttfb {t:g}" for t in info["ttfb"]] if info["link_MB_s"] > 0 else [])
    cols = ["pull"] + [f"j{j}" for j in info["streams"]]
    if any(f"{label}|x" in d for label in labels):
        cols.append("x")  # pull --extract over the link
    model = (f"; link model: {info['link_MB_s']:g} MB/s per connection, the ttfb in seconds "
             "before every answer" if info["link_MB_s"] > 0 else "")
    out.write(f"  streams: pull without --extract (x: with it), wall s (media requests){model}\n")
    out.write(f"    {'':<22}{'curl':>8}" + "".join(f"{c if c != 'pull' else 'pull':>16}" for c in cols)
              + "\n")
    result: dict[str, Any] = {}
    for label in labels:
        curl = d[f"{label}|curl"]
        name = label if label == "loopback" else f"{info['link_MB_s']:g} MB/s, {label} s"
        row = f"    {name:<22}{_best(curl):>8.2f}"
        for c in cols:
            if f"{label}|{c}" not in d:  # pull --extract: over the link only
                row += f"{'':>16}"
                continue
            t, media = d[f"{label}|{c}"], d[f"{label}|{c}_media"]
            row += f"{_best(t):>9.2f} ({media[0]:>4})"
            result[f"{label}|{c}"] = _best(t)
            result[f"{label}|{c}_media"] = media[0]
        result[f"{label}|curl"] = _best(curl)
        out.write(row + "\n")
    return result


def _faults(d: dict, key: str) -> str:
    """Fewest minor page faults over the rounds (``?`` from an older results file)."""
    got = d.get(key)
    return f"{min(got):,}" if got else "?"


def _floor(d: dict, pd: list, cores: int) -> list:
    """Per round, the least time an overlapped ``pull --extract`` could take here: neither
    less than the download + verify nor than the extraction alone (the library, in-process,
    on a fresh folder), nor than both's CPU time spread over every core. [] for runs saved
    without the library's numbers."""
    if not d.get("extract_lib") or not d.get("extract_lib_cpu"):
        return []
    return [max(down, lib, (down_cpu + lib_cpu) / max(cores, 1))
            for down, lib, down_cpu, lib_cpu in zip(pd, d["extract_lib"], d["pull_download_cpu"],
                                                    d["extract_lib_cpu"])]


def _pages(start: dict, end: Optional[dict]) -> str:
    """What a page of memory costs here: every byte written lands in new page cache (an
    extraction writes the archive's size again), so this moves every time measured."""
    def pair(p: dict) -> str:
        return f"{p['fresh_s_per_gib']:.2f} s ({p['reused_s_per_gib']:.2f} s just freed)"

    line = ("faulting in a GiB of memory costs " + pair(start) + " of kernel time at the start"
            + (f", {pair(end)} at the end" if end else ""))
    if start.get("reported_gib") is not None:
        line += (f"; this kernel hands free memory back to its host (free page reporting, "
                 f"{start['reported_gib']:.0f} GiB so far), so new page cache is costly")
    return line + "\n"


def report(info: dict, data: dict, out: TextIO) -> dict:
    """Print everything; return the numbers as one dict (``--json``)."""
    flags = ", ".join(f"{name} {'yes' if info[key] else 'no'}" for name, key in
                      (("AVX2", "avx2"), ("AVX-512", "avx512"), ("AMX-bf16", "amx_bf16"),
                       ("SHA-NI", "sha_ni")))
    mib = info["zip_bytes"] / MiB
    out.write(f"machine: {info['cpu']}, {info['cores']} cores ({flags}); load average "
              f"{info['load']:.1f} at the start, {info['load_end']:.1f} at the end\n")
    out.write(f"python {info['python']}; {info['curl']}; {info['unzip']}\n")
    if "checksum" in info:  # (runs saved before the checksum choice have none)
        out.write(f"drivestage verifies with {info['checksum']} here (DRIVESTAGE_CHECKSUM="
                  f"{info['checksum_wanted']}; this machine hashes md5 at "
                  f"{info['md5_mbs']:.0f} MB/s, sha256 at {info['sha256_mbs']:.0f} MB/s); "
                  "the recipe verifies with md5sum\n")
    if "crc32" in info:
        out.write(f"drivestage checks zip members' CRC-32 with {info['crc32']}'s"
                  + (" (the [fast] extra)" if info["crc32"] == "isal" else "") + "\n")
    end = info.get("create_us_end")
    out.write(f"creating an empty file in the workdir costs {info['create_us']:.0f} us of kernel "
              "time at the start" + (f", {end:.0f} us at the end" if end is not None else "")
              + " (an extractor pays it per member)\n")
    if "pages" in info:  # (runs saved before 2026-12-02 have none)
        out.write(_pages(info["pages"], info.get("pages_end")))
    out.write(f"zip: {mib:.0f} MiB, {info['members']} members; best of {info['repeat']} "
              "(range over rounds in brackets); wall seconds unless marked cpu\n")
    results: dict[str, Any] = {"machine": info, "servers": {}}
    for name, d in data.items():
        out.write(f"\n== {name} server ==\n")
        if "recipe" not in d:  # --streams-only
            results["servers"][name] = {"link_vs_curl": _link(d, info, out)}
            continue
        recipe, pe = d["recipe"], d["pull_extract"]
        out.write(f"  recipe (curl + md5sum + unzip -q): {_fmt_range(recipe)} "
                  f"(curl {_best(d['curl']):.2f}, md5sum {_best(d['md5sum']):.2f}, unzip "
                  f"{_best(d['unzip']):.2f}; cpu {_best(d['recipe_cpu']):.2f}; "
                  f"{_faults(d, 'recipe_faults')} page faults)\n")
        out.write(f"  pull --extract: {_fmt_range(pe)} (cpu {_best(d['pull_extract_cpu']):.2f}, "
                  f"{_faults(d, 'pull_extract_faults')} page faults, "
                  f"{d['pull_extract_media'][0]} media requests) -> "
                  f"{_fmt_ratio(pe, recipe)} the recipe (goal <= 0.4)\n")
        pd = [t["process_wall_s"] for t in d["download_phases"]]
        out.write(f"  download + verify: pull {_fmt_range(pd)} vs curl {_fmt_range(d['curl_alone'])}"
                  f" -> {_fmt_ratio(d['curl_alone'], pd)} curl's throughput; "
                  f"pull --extract / pull = {_fmt_ratio(pe, pd)} (goal <= 1.2)\n")
        floor = _floor(d, pd, info["cores"])
        if floor:
            out.write(f"  the machine's floor for pull --extract, max(download + verify, "
                      f"extraction alone, their CPU time / {info['cores']} cores): "
                      f"{_fmt_range(floor)} -> pull --extract is {_fmt_ratio(pe, floor)} it "
                      "(1.0: the overlap hides everything this machine can hide)\n")
        out.write(f"  rerun on the staged copy: {_fmt_range(d['rerun'], ' s')}, "
                  f"{d['rerun_calls'][0]} API call(s), {d['rerun_media'][0]} media "
                  "(goal: 1 metadata call, < 1 s)\n")
        peak = max(d["pull_extract_rss"]) / 1e6
        out.write(f"  peak memory of pull --extract: {peak:.0f} MB (goal < 200)\n")
        parts = _parts(d, out)
        streams = _streams(d, info, out)
        link = _link(d, info, out, streams)
        results["servers"][name] = {
            "recipe_s": _best(recipe), "curl_s": _best(d["curl"]), "md5sum_s": _best(d["md5sum"]),
            "unzip_s": _best(d["unzip"]), "pull_extract_s": _best(pe),
            "pull_extract_vs_recipe": _ratio(pe, recipe),
            "pull_download_s": min(pd), "curl_alone_s": _best(d["curl_alone"]),
            "download_vs_curl": _ratio(d["curl_alone"], pd),
            "pull_extract_vs_download": _ratio(pe, pd),
            "pull_extract_vs_floor": _ratio(pe, floor) if floor else None,
            "rerun_s": _best(d["rerun"]), "rerun_calls": d["rerun_calls"][0],
            "peak_rss_MB": round(peak, 1), "media_requests": d["pull_extract_media"][0],
            "parts": parts, "streams": streams, "link_vs_curl": link,
            "rounds": {k: v for k, v in d.items() if not k.endswith("phases")},
        }
    _summary(results, out)
    return results


def _link(d: dict, info: dict, out: TextIO, streams: Optional[dict] = None) -> dict:
    """pull against single-stream curl over the link model, per time to first byte."""
    if streams is None:
        streams = _streams(d, info, out)
    link = {}
    for t in (info["ttfb"] if info["link_MB_s"] > 0 else []):
        key = f"ttfb {t:g}"
        link[key] = streams[f"{key}|curl"] / streams[f"{key}|pull"]
    if link:
        out.write("  pull vs single-stream curl over the link: " + ", ".join(
            f"{k} s: {v:.2f}x" for k, v in link.items()) + " (goal >= 2.5x at 0.2 s)\n")
    hidden = {k: streams[f"{k}|x"] / streams[f"{k}|pull"] for k in link
              if f"{k}|x" in streams}
    if hidden:
        out.write("  pull --extract / download + verify over the link: " + ", ".join(
            f"{k} s: {v:.2f}x" for k, v in hidden.items()) + " (goal <= 1.2)\n")
        link.update({f"extract {k}": v for k, v in hidden.items()})
    return link


def _summary(results: dict, out: TextIO) -> None:
    servers = results["servers"]
    if not servers:
        return
    names = list(servers)
    out.write("\n== summary ==\n")
    out.write(f"  {'':<44}" + "".join(f"{n:>12}" for n in names) + "   goal\n")

    def row(label: str, fn, goal: str = "") -> None:
        cells = []
        for n in names:
            try:
                cells.append(fn(servers[n]))
            except (KeyError, ZeroDivisionError):
                cells.append("-")
        out.write(f"  {label:<44}" + "".join(f"{c:>12}" for c in cells) + f"   {goal}\n")

    if any("parts" not in s for s in servers.values()):  # --streams-only
        for key in next(iter(servers.values()))["link_vs_curl"]:
            row(f"pull vs curl over the link, {key} s",
                lambda s, k=key: f"{s['link_vs_curl'][k]:.2f}x",
                ">= 2.5x" if key == "ttfb 0.2" else "")
        return
    row("pull --extract / recipe", lambda s: f"{s['pull_extract_vs_recipe']:.2f}x", "<= 0.4")
    row("pull --extract / download + verify", lambda s: f"{s['pull_extract_vs_download']:.2f}x",
        "<= 1.2")
    row("download + verify, throughput vs curl", lambda s: f"{s['download_vs_curl']:.2f}x")
    row("rerun: seconds, API calls", lambda s: f"{s['rerun_s']:.2f}s {s['rerun_calls']}",
        "< 1 s, 1")
    row("peak memory", lambda s: f"{s['peak_rss_MB']:.0f} MB", "< 200 MB")
    row("media requests of pull", lambda s: str(s["media_requests"]))
    row("pull: seconds outside download()", lambda s: f"{s['parts']['pull_rest_s']:.2f}s")
    row("--extract on the staged copy (CLI), s", lambda s: f"{s['parts']['extract_staged_s']:.2f}s")
    row("extract_archive in-process, fresh folder, s",
        lambda s: f"{s['parts']['extract_lib_s']:.2f}s")
    for key in next(iter(servers.values()))["link_vs_curl"]:
        if key.startswith("extract "):
            row(f"pull -x / pull over the link, {key[8:]} s",
                lambda s, k=key: f"{s['link_vs_curl'][k]:.2f}x", "<= 1.2")
            continue
        row(f"pull vs curl over the link, {key} s", lambda s, k=key: f"{s['link_vs_curl'][k]:.2f}x",
            ">= 2.5x" if key == "ttfb 0.2" else "")
