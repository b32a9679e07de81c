"""Ask a real Drive what the emulator cannot tell: how its etags and ``If-Match`` behave.

    python scripts/drive_probe.py                          # in the top of My Drive
    python scripts/drive_probe.py --parent drive:scratch   # in a folder of your choice
    python scripts/drive_probe.py --other-credentials other-client.json

It uses drivestage's own login (the credentials ``drivestage pull`` uses: ``--credentials``,
``$DRIVESTAGE_CREDENTIALS``, Colab's, ...; ``$DRIVESTAGE_API_ROOT`` for an emulator), makes
one scratch folder ``drivestage-probe-<random>`` under ``--parent``, works only inside it (each
write names an item this run made), and removes it at the end, also on Ctrl-C or SIGTERM.

One line per question, with its evidence (statuses, etags):

- ``child-etag``: does adding a child change a folder's etag? (The run's lease, lease47:
  a yes costs a renewal during a push one read and one patch more, never a wrong decision.)
- ``patch-stale``: is a ``files.patch`` of a property naming a stale etag refused (412)?
  (The lease's compare-and-swap needs yes; lease48's probe asks this at each start.)
- ``trash-patch-stale``: is a ``files.patch`` of ``labels.trashed`` naming a stale etag
  refused? ``trash-stale``: is ``files.trash`` naming one refused?
- ``patch-merges``: does a ``files.patch`` naming some properties keep those it does not name
  (merge), or clear them (replace)? ``other-apps``: are another app's PRIVATE properties sent
  back to this one, and kept by this one's patch? (Needs ``--other-credentials``: a second
  OAuth client's; else "not asked".)

Exit 0 when every question was asked, 1 with one ``Error:`` line otherwise (the scratch folder
removed all the same; where even that fails, the line names it).
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:   # (run as a script from a checkout: its drivestage)
    sys.path.insert(0, ROOT)

import httplib2  # noqa: E402
from googleapiclient.errors import HttpError  # noqa: E402

from drivestage import paths  # noqa: E402
from drivestage.errors import DriveStageError  # noqa: E402
from drivestage.remote import open_store  # noqa: E402

FOLDER_MIME = "application/vnd.google-apps.folder"
#: The properties this script writes (on its own items only).
KEY = "drivestage-probe"


class Probe:
    """The scratch folder and the requests of one run: every write names an item it made."""

    def __init__(self, store: Any, parent_id: str, other: Any = None):
        self.store, self.parent_id, self.other = store, parent_id, other
        self.made: list[str] = []   # (ids this run made: the only ones it writes)

    def _run(self, request: Any, store: Any = None) -> tuple[int, dict[str, Any]]:
        """One request, no retry: (status, the answer's JSON; {} for an error)."""
        store = store or self.store
        try:
            return 200, request.execute(http=store.transport.http()) or {}
        except HttpError as exc:
            return int(exc.resp.status), {}

    def _files(self, store: Any = None) -> Any:
        return (store or self.store).transport.service.files()

    def _ours(self, file_id: str) -> str:
        if file_id not in self.made:   # (never a write to anything else)
            raise AssertionError(f"{file_id} was not made by this probe")
        return file_id

    def make(self, title: str, parent: str, folder: bool = False) -> str:
        """A new item (a folder, or an empty file) in ``parent``: its id."""
        if parent != self.parent_id:
            self._ours(parent)
        body: dict[str, Any] = {"title": title, "parents": [{"id": parent}]}
        if folder:
            body["mimeType"] = FOLDER_MIME
        status, res = self._run(self._files().insert(body=body, supportsAllDrives=True,
                                                     fields="id"))
        if status != 200 or not res.get("id"):
            raise DriveStageError(f"could not make {title} in {parent}: HTTP {status}")
        self.made.append(str(res["id"]))
        return str(res["id"])

    def etag(self, file_id: str, store: Any = None) -> str:
        status, res = self._run(self._files(store).get(
            fileId=self._ours(file_id), supportsAllDrives=True, fields="etag"), store)
        return str(res.get("etag", f"(HTTP {status})"))

    def read(self, file_id: str, store: Any = None) -> dict[str, Any]:
        """Its etag, trashed label and properties, as ``store``'s app sees them."""
        return self._run(self._files(store).get(
            fileId=self._ours(file_id), supportsAllDrives=True,
            fields="etag,labels(trashed),properties(key,value,visibility)"), store)[1]

    def patch(self, file_id: str, body: dict[str, Any], if_match: Optional[str],
              store: Any = None) -> tuple[int, str]:
        """One ``files.patch`` (naming ``if_match``): (status, the new etag or "")."""
        request = self._files(store).patch(fileId=self._ours(file_id), body=body,
                                           supportsAllDrives=True, fields="etag")
        if if_match is not None:
            request.headers["If-Match"] = if_match
        status, res = self._run(request, store)
        return status, str(res.get("etag", ""))

    def trash(self, file_id: str, if_match: str) -> int:
        request = self._files().trash(fileId=self._ours(file_id), supportsAllDrives=True,
                                      fields="etag")
        request.headers["If-Match"] = if_match
        return self._run(request)[0]

    def remove(self) -> None:
        """The scratch folder and everything in it, deleted for good; trashed where Drive
        refuses that (a shared drive's Content manager may trash, not delete)."""
        if self.made:
            folder = self.made[0]
            status, _ = self._run(self._files().delete(fileId=folder, supportsAllDrives=True))
            if status == 403:
                status, _ = self._run(self._files().trash(fileId=folder, supportsAllDrives=True))
            if status not in (200, 204, 404):
                raise DriveStageError(f"could not remove the scratch folder {folder} "
                                      f"(HTTP {status}); remove it by hand")


def _prop(value: str, visibility: str = "PUBLIC") -> dict[str, str]:
    return {"key": KEY, "value": value, "visibility": visibility}


def _refused(status: int) -> str:
    return "yes" if status == 412 else "no, applied" if status == 200 else "unknown"


def child_etag(p: Probe, folder: str) -> str:
    before = p.etag(folder)
    p.make("child.txt", folder)
    after = p.etag(folder)
    return (f"child-etag: adding a child changes a folder's etag: "
            f"{'yes' if before != after else 'no'} (etag {before} before, {after} after)")


def patch_stale(p: Probe, folder: str) -> str:
    stale = p.etag(folder)
    first, now = p.patch(folder, {"properties": [_prop("1")]}, stale)
    status, _ = p.patch(folder, {"properties": [_prop("2")]}, stale)
    value = next((x.get("value") for x in p.read(folder).get("properties", [])
                  if x.get("key") == KEY), None)
    return (f"patch-stale: a property patch naming a stale etag is refused: {_refused(status)} "
            f"(HTTP {status} naming {stale}, the folder's {now} after a first patch answered "
            f"{first}; the property reads {value!r} after)")


def _staled(p: Probe, name: str, folder: str) -> tuple[str, str, str]:
    """A new file in ``folder`` and an etag of it made stale by a property patch."""
    file_id = p.make(name, folder)
    stale = p.etag(file_id)
    _, now = p.patch(file_id, {"properties": [_prop("1")]}, None)
    return file_id, stale, now


def trash_patch_stale(p: Probe, folder: str) -> str:
    file_id, stale, now = _staled(p, "trash-by-patch.txt", folder)
    status, _ = p.patch(file_id, {"labels": {"trashed": True}}, stale)
    trashed = p.read(file_id).get("labels", {}).get("trashed")
    return (f"trash-patch-stale: files.patch labels.trashed naming a stale etag is refused: "
            f"{_refused(status)} (HTTP {status} naming {stale}, the file's {now}; trashed "
            f"after: {trashed})")


def trash_stale(p: Probe, folder: str) -> str:
    file_id, stale, now = _staled(p, "trash.txt", folder)
    status = p.trash(file_id, stale)
    trashed = p.read(file_id).get("labels", {}).get("trashed")
    return (f"trash-stale: files.trash naming a stale etag is refused: {_refused(status)} "
            f"(HTTP {status} naming {stale}, the file's {now}; trashed after: {trashed})")


def _keys(res: dict[str, Any]) -> list[str]:
    return sorted(f"{x.get('key')}={x.get('value')}/{x.get('visibility')}"
                  for x in res.get("properties", []))


def patch_merges(p: Probe, folder: str) -> str:
    file_id = p.make("merge.txt", folder)
    p.patch(file_id, {"properties": [_prop("public"), {"key": KEY + "-own", "value": "private",
                                                       "visibility": "PRIVATE"}]}, None)
    status, _ = p.patch(file_id, {"properties": [_prop("again")]}, None)
    after = _keys(p.read(file_id))
    kept = any(k.startswith(KEY + "-own=") for k in after)
    return (f"patch-merges: a properties patch keeps those it does not name: "
            f"{'yes (merge)' if kept else 'no (replace)'} (HTTP {status}; after: {after})")


def other_apps(p: Probe, folder: str) -> str:
    if p.other is None:
        return ("other-apps: another app's PRIVATE properties: not asked (give "
                "--other-credentials: a second OAuth client's)")
    file_id = p.make("other-app.txt", folder)
    theirs = {"key": KEY + "-other", "value": "theirs", "visibility": "PRIVATE"}
    made, _ = p.patch(file_id, {"properties": [theirs]}, None, store=p.other)
    seen = _keys(p.read(file_id))
    sent = any(k.startswith(KEY + "-other=") for k in seen)
    res = p.read(file_id)   # (sent back as read, with this app's own: swap_properties' way)
    status, _ = p.patch(file_id, {"properties": res.get("properties", []) + [_prop("ours")]},
                        res.get("etag"))
    kept = any(k.startswith(KEY + "-other=") for k in _keys(p.read(file_id, store=p.other)))
    return (f"other-apps: another app's PRIVATE property is sent to this one: "
            f"{'yes' if sent else 'no'}, kept by this one's patch: {'yes' if kept else 'no'} "
            f"(its write HTTP {made}; this app read {seen}; its patch HTTP {status})")


QUESTIONS: tuple[Callable[[Probe, str], str], ...] = (
    child_etag, patch_stale, trash_patch_stale, trash_stale, patch_merges, other_apps)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", default="drive:",
                        help="the drive: folder the scratch folder is made in (default: the "
                             "top of My Drive); it must exist")
    parser.add_argument("--credentials", default=None,
                        help="as drivestage pull's --credentials (default: its search)")
    parser.add_argument("--other-credentials", default=None,
                        help="a second OAuth client's credentials, for other-apps")
    parser.add_argument("--other-token", default=None, help=argparse.SUPPRESS)   # (emulator)
    args = parser.parse_args(argv)
    if not paths.is_drive(args.parent):
        parser.error(f"--parent {args.parent}: give a drive: folder, e.g. drive:scratch")

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    # (Put back at the end: a caller in this process keeps its own Ctrl-C.)
    before = {s: signal.signal(s, h) for s, h in ((signal.SIGTERM, _stop),
                                                  (signal.SIGINT, signal.default_int_handler))}
    try:
        return _asked(args)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _asked(args: argparse.Namespace) -> int:
    """:func:`main` once its arguments are read: the exit code."""
    probe: Optional[Probe] = None
    try:
        store, path = open_store(args.parent, credentials=args.credentials)
        other = None
        if args.other_credentials or args.other_token:
            other = open_store(args.parent, credentials=args.other_credentials,
                               token=args.other_token)[0]
        probe = Probe(store, store.resolve(path).id, other)
        name = f"drivestage-probe-{secrets.token_hex(4)}"
        folder = probe.make(name, probe.parent_id, folder=True)
        where = args.parent if args.parent.endswith((":", "/")) else args.parent + "/"
        print(f"scratch folder {where}{name} ({folder})", file=sys.stderr)
        for question in QUESTIONS:
            print(question(probe, folder), flush=True)
    except KeyboardInterrupt:
        print("interrupted: removing the scratch folder", file=sys.stderr)
        return _removed(probe, 130)
    except DriveStageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return _removed(probe, 1)
    except (OSError, httplib2.HttpLib2Error) as exc:   # (no answer at all: a network error)
        print(f"Error: no answer from Drive ({type(exc).__name__}: {exc})", file=sys.stderr)
        return _removed(probe, 1)
    return _removed(probe, 0)


def _removed(probe: Optional[Probe], code: int) -> int:
    """``code`` once the scratch folder is removed; 1 with its line where that failed."""
    if probe is None:
        return code
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # (a second Ctrl-C: the removal goes on)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if code:   # (a request cut by Ctrl-C left its connection waiting for its answer)
            probe.store.transport.drop()
        probe.remove()
    except (DriveStageError, OSError, httplib2.HttpLib2Error) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
