"""attack25: a resource key goes to Drive (the API root) and nowhere else. A key with its id
opens a file shared "anyone with the link" before Drive's 2021 update: it is the secret part
of the link. Drive's API never redirects; a server or proxy that does (to another origin)
must not be handed the keys: httplib2 follows a redirect with the request's headers,
dropping only ``Authorization``."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _proxy import Proxy, Reply

OWNER = "teacher@school.edu"


class _Elsewhere:
    """Another origin: records the headers of each request it gets, answers 404."""

    def __init__(self) -> None:
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                body = b'{"error": {"code": 404, "message": "nope"}}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_redirect_to_another_origin_is_not_handed_the_resource_keys(emulator, env,
                                                                     monkeypatch, tmp_path):
    fid = emulator.add_file("Shared/w.bin", b"weights", owner=OWNER, resource_key="0-secretKEY")
    emulator.share_link(fid, role="reader", resource_key="0-secretKEY")
    other = _Elsewhere()
    try:
        def away(code: int, headers: dict, body: bytes) -> Reply:
            return Reply(302, {"Location": f"{other.url}/drive/v2/files/{fid}",
                               "Content-Length": "0"}, [b""])

        with Proxy(emulator.url) as proxy:
            proxy.on("GET", rf"/drive/v2/files/{fid}\b(?!.*alt=media)", away, forward=False)
            monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
            code, _, err = _cli.run("pull", f"https://drive.google.com/file/d/{fid}/view?"
                                    "resourcekey=0-secretKEY", str(tmp_path / "d"), "-q")
    finally:
        other.close()
    assert code != 0
    assert "Traceback" not in err
    leaked = [h for h in other.seen if "0-secretKEY" in " ".join(h.values())]
    assert not leaked, [(k, v) for h in leaked for k, v in h.items() if "secret" in v]
    assert not [h for h in other.seen if "authorization" in h]
