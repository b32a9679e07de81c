"""What a request of the emulator goes through before its route: the host and origin it
came from (a web page must not reach a loopback server), a method override (a long
``q`` sent as a form), the token and its scopes, and the per-user quotas that charge it.
A mixin of the connection handler (:mod:`handler`)."""
from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from drivestage.emulator.access import Caller, parse_resource_keys
from drivestage.emulator.errors import EmulatorApiError
from drivestage.emulator.hosts import host_name, is_loopback_host


#: The most parameters a method override's form may hold: a files.list takes about 15.
MAX_FORM_FIELDS = 100


class Admission:
    """The checks :meth:`handler._Handler._handle` makes before routing a request (the
    handler provides the request, its body and the emulator)."""

    def _check_host(self) -> None:
        """Bound to loopback, answer only loopback names: a web page must not reach this
        server through a DNS name that resolves to 127.0.0.1 (DNS rebinding)."""
        host = self.headers.get("Host")
        if host is None or not is_loopback_host(self.emu.host) or is_loopback_host(host_name(host)):
            return
        raise EmulatorApiError(
            403, "forbidden", f"Host {host!r} is not allowed: this emulator listens on loopback and "
                              "answers only loopback names (localhost, 127.0.0.1, ::1).",
            location="Host", location_type="header")

    def _check_origin(self) -> None:
        """Refuse what a web page sends: a page on any site may POST a ``text/plain`` body
        to 127.0.0.1 without a preflight (a "simple request"), and the emulator takes any
        token (``?access_token=x``) and, without ``--token``, control calls with none, so a
        page could inject faults, seed files or upload (attackemu45). Browsers name the
        page in ``Origin`` (and ``Sec-Fetch-Site``); Drive's clients send neither."""
        origin = self.headers.get("Origin")
        site = (self.headers.get("Sec-Fetch-Site") or "none").strip().lower()
        own = f"http://{(self.headers.get('Host') or '').strip().lower()}"
        if (origin is None or origin.strip().lower() == own) and site in ("none", "same-origin"):
            return
        raise EmulatorApiError(
            403, "forbidden", f"Cross-origin request from {origin or site!r} refused: the emulator "
                              "answers programs, not web pages.",
            location="Origin", location_type="header")

    def _method_override(self, target: str) -> str:
        """googleapiclient sends a GET whose URL is over 2,048 characters (a long ``q``) as a
        POST with ``X-HTTP-Method-Override: GET`` and the query string as a form body, as
        Google's front end accepts; returns the request target as it would have been."""
        override = (self.headers.get("X-HTTP-Method-Override") or "").strip().upper()
        if not override or self.command != "POST":
            return target
        if override not in ("GET", "PUT", "PATCH", "DELETE", "HEAD"):
            raise EmulatorApiError(400, "badRequest", f"Invalid X-HTTP-Method-Override: {override!r}.",
                                   location="X-HTTP-Method-Override", location_type="header")
        self.command = override
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            form = self.body.read_all().decode("utf-8", "replace")
            try:   # (bounded: 1 MiB of "a=&a=&..." took 43 MB to parse, emul48)
                fields = parse_qs(form, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
            except ValueError:
                raise EmulatorApiError(400, "badRequest", "The request's form holds more than "
                                                          f"{MAX_FORM_FIELDS} parameters.")
            self.query.update({k: v[-1] for k, v in fields.items()})
            target = f"{target}{'&' if '?' in target else '?'}{form}"
        return target

    def _authorize(self) -> None:
        header = self.headers.get("Authorization") or ""
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        token = token or self.query.get("access_token", "")
        challenge = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        if not token:
            raise EmulatorApiError(401, "required", "Login Required.", location="Authorization",
                                   location_type="header", headers=challenge)
        # (compared in constant time: the token guards a server other machines may reach)
        if self.emu.token is not None and \
                not hmac.compare_digest(token.encode(), self.emu.token.encode()):
            raise EmulatorApiError(401, "authError", "Invalid Credentials", location="Authorization",
                                   location_type="header",
                                   headers={"WWW-Authenticate": challenge["WWW-Authenticate"]
                                            + ', error="invalid_token"'})
        self._token = token
        self.caller = Caller(token, self.emu.token_scopes(token), self.emu.is_service_account(token),
                             parse_resource_keys(self.headers.get("X-Goog-Drive-Resource-Keys")),
                             # Drive's enable-shareddrives guide: every files.* call on a
                             # shared drive's items needs it (the deprecated name counts too).
                             self._flag("supportsAllDrives") or self._flag("supportsTeamDrives"),
                             self.emu.token_app(token))

    def _admit(self) -> None:
        """What Drive checks before it looks at the call itself: the resource-key syntax,
        the token's scopes, and the per-user quotas (which charge the call)."""
        if "resourceKey" in self.query:
            raise EmulatorApiError(400, "badRequest", "Resource key cannot be passed as a query parameter, "
                                                      "use the X-Goog-Drive-Resource-Keys header instead.",
                                   location="resourceKey")
        kind = self._rec.kind
        write = self.command in ("POST", "PUT", "PATCH", "DELETE")
        self.caller.check_scope(write=write, media=kind == "media.download")
        self._rec.units = self.emu.api_quota.charge(self._token or "", kind)
