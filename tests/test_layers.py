"""The shape of drivestage: layers without circles, one boundary to Drive, small modules
(the emulator's and the trainer's too).

Read from the source (every import, including those inside functions and under
``TYPE_CHECKING``), so a lazy import cannot hide a circle.
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "drivestage"

#: Each module's layer: a module imports only from its own layer or lower ones, never from a
#: higher one. A new module must be placed here (ARCHITECTURE.md draws the same picture).
LAYERS = [
    ["errors"],
    ["sizes", "finite_range", "paths", "shell_words", "member_reach", "stage_failed", "temps", "localfs", "dangling_links", "small_files", "sources", "local_trash", "lost_mounts",
     "dir_watch", "mount_table", "unread", "name_blocked",
     "walk_clock",   # one time bound for every listing of a folder walk (read by drive.paging)
     "latest_clock",   # the later of this machine's clock and Drive's as heard (told by drive)
     "heap", "deferred_ctrl_c", "interrupts", "pool", "stream_lines", "cpuload", "held_signals", "stop_signals", "lost_interrupts", "no_match",
     "stderr_tail",
     "special_files", "stdout_sink", "command", "fork_drop"],
    ["gil"],   # a long pure-Python step that lets the I/O threads beside it run
    ["store_entries", "store", "sidecar", "first_seen", "flagged"],   # flagged: sidecars Drive will not serve
    ["retention_policy", "retention_plan", "lineage"],
    ["retention_order"],
    ["lockdir", "claims", "state", "retention", "create_ids"],
    ["unread_guard", "unread_mounts", "unread_memory", "unread_records"],   # the folders push could not read, remembered across processes,
    ["orphans"],
    ["lone_autosaves",   # an autosave left without its sidecar: which may go
     "unlisted_sidecars"],   # a checkpoint listed without one that push --delete spares
    ["folder_view"],   # a managed folder as a push leaves it: what pruning plans on
    # push's local side: the walk, one push per place; a directory store's run-folder marks
    ["local_tree", "lock_holders", "locks", "local_marks", "local_md5", "local_held",
     "held_choice", "sidecar_unread", "local_reads"],
    ["upload"],  # 0.1.0 compatibility: Md5Cache
    # Google Drive, one backend: nothing outside drivestage.drive (and the door) imports it.
    ["drive.refusals",   # 403s that are no matter of access (read for drive.answers)
     "drive.made_mark",
     "drive.resources", "drive.answers", "drive.lookups", "drive.proxies", "drive.proxy_socks",
     "drive.proxy_tls",
     "drive.sliced",
     "drive.connections",
     "drive.services",
     "drive.token_file", "drive.auth", "drive.login", "drive.server_clock",
     "drive.paging", "drive.provenance", "drive.mount_marks", "drive.marks_below",
     "drive.shortcuts", "drive.folders", "drive.sessions", "drive.removal", "drive.trash_paths"],
    ["drive.retry"],
    ["drive.transport"],
    ["drive.media_answers"],   # what a file's bytes answer may not be (compressed, a page)
    ["drive.media", "drive.batches", "drive.reparent", "drive.upload_ends"],
    ["drive.upload"],
    ["drive.store_properties"],
    ["drive.store_bytes", "drive.store_deletes", "drive.store_removals", "drive.store_folders",
     "drive.store_uploads",
     "drive.ids", "drive.relist"],
    ["drive.store"],
    ["drive.places", "drive"],
    # A directory, the other backend.
    ["localdir"],
    # The one door from a user's string to (store, path).
    ["remote"],
    # Archives: what a member is, the rules, then writing and merging into DEST.
    ["extract.formats", "extract.frames", "extract.copying", "extract.tarinfo",
     "extract.zip_ends", "extract.zip_times", "extract.names"],
    ["extract.tempdir", "extract.worker"],   # a worker process imports no more than this
    ["extract.members"],
    ["extract.validation", "extract.owned", "extract.statedir"],
    ["extract.links", "extract.merging", "extract.writing", "extract.shares"],
    ["extract.records", "extract.workers", "extract.occupied", "extract.journals"],
    ["extract.job"],
    ["extract.overlapped"],
    ["partials", "checksums", "folder_record"],
    ["stream_count", "prefix_hash", "stream_pieces", "stream_threads"],
    ["streams"],
    ["download", "extract"],
    ["mtimes"],   # when a file on disk is what a record saw (stamps re-exports its checks)
    ["stamp_cache"],   # a folder pull's parsed stamps, each read once per version
    ["stamp_files"],   # stamp files: names, reads, records (stamps re-exports them)
    ["stamps"],
    ["hashed_read"],
    ["unpack", "hashed_pass"],
    ["sidecar_copy", "stage_extraction", "stage_original", "stage_decide", "stage_order",
     "stage_move"],   # stage_move: staged copies moved to another DEST with their stamps
    ["stage_walk", "other_parents", "run_claims", "dedupe_result"],   # run_claims: a live run's lease, read   # other_parents: what push --delete spares (extra)
    ["stage_file", "stage_clash", "pruning", "extra", "old_copies", "behind", "other_runs", "dedupe",
     "mirror_claim", "push_watch", "push_room", "push_result", "snapshots", "run_folders", "push_folders",
     "push_fence"],
    ["push_spared"],   # what push --delete leaves of what it decided (extra's Deletions)
    ["sidecar_phases", "push_resend", "push_send", "stage_recheck"],   # push_send, push_resend: PushJob's mixins
    ["stage_tree", "push_job"],
    ["upload_tree"],
    ["stage", "mirror"],
    ["hooks"],
    ["cli.options", "cli.group"],
    ["cli.pull", "cli.push", "cli.mirror", "cli.emulator", "cli.runs", "cli.unread"],
    ["cli"],
    ["entry"],  # imports cli by name, inside its Ctrl-C handler
    ["__main__", ""],  # "" is the package itself (its lazy attributes import by name)
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[0] == "emulator":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The drivestage modules (outside the emulator) that ``name`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(["drivestage"] + package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package.
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.append(sub if sub.removeprefix("drivestage.") in MODULES else module)
        for target in targets:
            if target != "drivestage" and not target.startswith("drivestage."):
                continue
            short = target[len("drivestage."):] if target != "drivestage" else ""
            if short.split(".")[0] == "emulator":
                continue
            if short in MODULES:
                found.add(short)
    found.discard(name)
    return found


@functools.lru_cache(maxsize=None)
def _graph() -> dict[str, set[str]]:
    """{module: the drivestage modules it imports}: read when a test first asks (parsing
    every module took 0.36 s of each test worker's collection of the suite)."""
    return {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    assert sorted(set(MODULES) - set(LAYER)) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_higher_layer(name):
    upward = sorted(m for m in _graph()[name] if LAYER[m] > LAYER[name])
    assert upward == [], f"drivestage.{name} imports from higher layers: {upward}"


def test_the_import_graph_has_no_circle():
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(_graph()[node]):
            if seen.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, path + [nxt])
        seen[node] = 2

    for name in sorted(_graph()):
        if name not in seen:
            visit(name, [name])


def test_drive_libraries_stay_inside_drivestage_drive():
    """PyDrive2 for metadata lives in the Drive store and auth; googleapiclient in drive.*."""
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(from|import) pydrive2", text, re.M):
            assert name in ("drive.store", "drive.auth"), name
        if re.search(r"^\s*(from|import) (googleapiclient|httplib2|oauth2client)", text, re.M):
            assert name.startswith("drive."), name


def test_callers_know_stores_only_through_the_protocol():
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bstore\s*:\s*Any\b", text), f"drivestage.{name}: store: Any"
        probe = re.search(r"\b(getattr|hasattr)\(\s*(self\.)?_?store\b", text)
        assert probe is None, f"drivestage.{name} probes a store: {probe.group(0)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_500_lines(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= 500, f"drivestage.{name} has {lines} lines; split it by what it holds"


def _package_modules(root: Path, package: str) -> dict[str, Path]:
    """{dotted name: path} of every module under ``root``, the package ``package``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


EMULATOR_MODULES = _package_modules(PKG / "emulator", "drivestage.emulator")
TRAINER_MODULES = _package_modules(PKG.parent / "trainer", "trainer")


@pytest.mark.parametrize("name", sorted(EMULATOR_MODULES))
def test_no_emulator_module_over_500_lines(name):
    lines = EMULATOR_MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= 500, f"{name} has {lines} lines; split it by what it holds"


@pytest.mark.parametrize("name", sorted(TRAINER_MODULES))
def test_no_trainer_module_over_500_lines(name):
    lines = TRAINER_MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= 500, f"{name} has {lines} lines; split it by what it holds"
