"""The emulator's control API under ``/_emulator/`` (not part of Drive): faults, the
request log, seeding files and shared drives. A mixin of the request handler."""
from __future__ import annotations

from dataclasses import asdict

from drivestage.emulator.errors import EmulatorApiError


class ControlRoutes:
    """``/_emulator/...`` endpoints (the handler provides query, body and sending)."""

    # ------------------------------------------------------------------ control API
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
            elif route == "/files" and cmd == "GET":
                self._send_json(200, emu.files())
            elif route == "/files" and cmd == "POST":
                if not self.query.get("path"):
                    raise EmulatorApiError(400, "required", "POST /_emulator/files needs ?path=a/b/name",
                                           location="path")
                file_id = emu._add_stream(self.query["path"], self.body.read,
                                          drive_id=self.query.get("drive_id"),
                                          mime_type=self.headers.get("Content-Type"))
                self._send_json(200, emu.render(emu.store.get(file_id)))
            elif route == "/drives" and cmd == "GET":
                self._send_json(200, [emu._render_drive(d) for d in emu.store.drives.values()])
            elif route == "/drives" and cmd == "POST":
                name = self._read_json().get("name") or "Shared drive"
                self._send_json(200, {"id": emu.add_shared_drive(name)})
            elif route == "/service_account" and cmd == "POST":
                spec = self._read_json()
                emu.set_service_account(bool(spec.get("enabled", True)), token=spec.get("token"))
                self._send_json(200, {"ok": True})
            else:
                raise EmulatorApiError(404, "notFound", f"No control endpoint {cmd} {path}")
        except (ValueError, TypeError) as exc:
            raise EmulatorApiError(400, "badRequest", str(exc))
