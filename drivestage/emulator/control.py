"""The emulator's control API under ``/_emulator/`` (not part of Drive): faults, the
request log, API call counts, seeding files, folders, shortcuts and shared drives, sharing,
flags, token scopes, quotas and revisions. A mixin of the request handler.

Besides the dedicated endpoints, ``POST /_emulator/<method>`` calls the Python API method of
that name (one of :data:`CALLABLE`) with the JSON body as keyword arguments and answers
``{"result": ...}``; ``curl`` users get what tests in Python get.
"""
from __future__ import annotations

from dataclasses import asdict

from drivestage.emulator.errors import EmulatorApiError

#: Emulator methods reachable as ``POST /_emulator/<name>`` with keyword arguments.
CALLABLE = ("add_folder", "add_shortcut", "add_shared_drive", "set_drive_role", "share", "unshare",
            "share_link", "set_resource_key", "set_abusive", "restrict_download",
            "restrict_drive_downloads", "set_checksums", "hide_size",
            "limit_downloads", "set_child_limit", "set_item_creation_limit", "set_other_usage",
            "set_token_scopes", "set_api_quota", "revisions", "expire_revisions", "set_service_account",
            "expire_download_links", "set_token_app", "set_properties", "properties_of")


class ControlRoutes:
    """``/_emulator/...`` endpoints (the handler provides query, body and sending)."""

    def _control(self, path: str) -> None:
        if self.emu.token is not None:
            self._authorize()
        emu, cmd = self.emu, self.command
        route = path[len("/_emulator"):].rstrip("/") or "/"
        try:
            if route == "/health" and cmd == "GET":
                self._send_json(200, {"ok": True, "url": emu.url})
            elif route == "/faults" and cmd == "GET":
                self._send_json(200, emu.faults.describe())
            elif route == "/faults" and cmd == "POST":
                emu.faults.apply(self._read_json())
                self._send_json(200, emu.faults.describe())
            elif route == "/faults" and cmd == "DELETE":
                self.body.drain()
                emu.faults.clear()
                self._send_json(200, emu.faults.describe())
            elif route == "/requests" and cmd == "GET":
                self._send_json(200, [asdict(r) for r in emu.requests])
            elif route == "/requests" and cmd == "DELETE":
                self.body.drain()
                emu.clear_requests()
                self._send_json(200, [])
            elif route == "/calls" and cmd == "GET":
                self._send_json(200, {"calls": dict(emu.api_calls()), "units": emu.quota_units(),
                                      "quota": emu.api_quota.describe()})
            elif route == "/files" and cmd == "GET":
                self._send_json(200, emu.files())
            elif route == "/files" and cmd == "POST":
                self._control_add_file()
            elif route == "/drives" and cmd == "GET":
                self._send_json(200, [emu._render_drive(d) for d in emu.store.drives.values()])
            elif route == "/drives" and cmd == "POST":
                spec = self._read_json()
                drive_id = emu.add_shared_drive(spec.get("name") or "Shared drive",
                                                role=spec.get("role", "organizer"),
                                                item_limit=spec.get("item_limit"))
                self._send_json(200, {"id": drive_id})
            elif route == "/service_account" and cmd == "POST":
                spec = self._read_json()
                emu.set_service_account(bool(spec.get("enabled", True)), token=spec.get("token"))
                self._send_json(200, {"ok": True})
            elif cmd == "POST" and route.lstrip("/") in CALLABLE:
                result = getattr(emu, route.lstrip("/"))(**self._read_json())
                self._send_json(200, {"result": result})
            else:
                raise EmulatorApiError(404, "notFound", f"No control endpoint {cmd} {path}")
        except (ValueError, TypeError, KeyError) as exc:
            raise EmulatorApiError(400, "badRequest", str(exc))

    def _control_add_file(self) -> None:
        """``POST /_emulator/files?path=a/b.zip[&drive_id=&owner=&shared_with_me=ROLE&resource_key=&abusive=1]``
        with the content as the body."""
        emu, q = self.emu, self.query
        if not q.get("path"):
            raise EmulatorApiError(400, "required", "POST /_emulator/files needs ?path=a/b/name", location="path")
        shared = q.get("shared_with_me") or None
        owner = emu._owner(q.get("owner"), shared, q.get("resource_key"))
        file_id = emu._add_stream(q["path"], self.body.read, drive_id=q.get("drive_id"),
                                  mime_type=self.headers.get("Content-Type"), owner=owner)
        emu._sharing(file_id, "reader" if shared in ("1", "true") else shared, q.get("resource_key"))
        if self._flag("abusive"):
            emu.set_abusive(file_id)
        self._send_json(200, emu.render(emu.store.get(file_id)))
