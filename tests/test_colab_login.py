"""A ``!drivestage`` cell in Colab, against a fake GCE metadata server on loopback that answers
as Colab's does: metadata present, and ``service-accounts/default`` 404 until the notebook
logged in (``auth.authenticate_user()``; ``drive.mount()`` is no login). google-auth finds it
through ``GCE_METADATA_HOST`` / ``GCE_METADATA_IP``, unmocked, in a child process like a ``!``
cell's; nothing leaves the machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOKEN = "colab-user-token"


class MetadataServer:
    """Colab's metadata server as a ``!`` cell sees it, before or after the notebook login."""

    def __init__(self, logged_in: bool):
        self.logged_in = logged_in
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.paths.append(self.path)
                if self.headers.get("Metadata-Flavor") != "Google":
                    return self._send(403, "text/plain", b"Missing Metadata-Flavor header")
                path = urllib.parse.urlsplit(self.path).path
                if path == "/":
                    return self._send(200, "application/text", b"computeMetadata/")
                for who in ("default", "student@gmail.com"):
                    if path.startswith(f"/computeMetadata/v1/instance/service-accounts/{who}/"):
                        account = f"/computeMetadata/v1/instance/service-accounts/{who}/"
                        break
                else:
                    account = None
                if account is None or not outer.logged_in:
                    return self._send(404, "text/html", b"<p>Not Found</p>")
                if path == account:
                    return self._json({"email": "student@gmail.com", "aliases": ["default"],
                                       "scopes": ["https://www.googleapis.com/auth/drive"]})
                if path == account + "token":
                    return self._json({"access_token": TOKEN, "expires_in": 3599,
                                       "token_type": "Bearer"})
                self._send(404, "text/html", b"<p>Not Found</p>")

            def _json(self, body):
                self._send(200, "application/json", json.dumps(body).encode())

            def _send(self, status, ctype, data):
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def colab(tmp_path):
    """``colab(logged_in, how)`` -> (metadata server, the environment of a ``!`` cell), which
    tells Colab by its variable (``how="env"``) or by its package being importable (a stand-in
    ``google.colab`` on the path, as Colab installs it)."""
    servers = []

    def make(logged_in: bool, how: str = "env"):
        srv = MetadataServer(logged_in)
        servers.append(srv)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DRIVESTAGE_", "GOOGLE_", "GCE_", "CLOUDSDK_", "COLAB_"))}
        if how == "env":
            env["COLAB_RELEASE_TAG"] = "release-colab_20260801-060000_RC00"
        else:
            package = tmp_path / "colab-site" / "google" / "colab"
            package.mkdir(parents=True)
            (package / "__init__.py").write_text("")
            env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", ""),
                                                 str(package.parent.parent)])
        env.update(GCE_METADATA_HOST=srv.host, GCE_METADATA_IP=srv.host,
                   HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"),
                   CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
                   DRIVESTAGE_STATE_DIR=str(tmp_path / "state"))
        return srv, env

    yield make
    for srv in servers:
        srv.stop()


@pytest.mark.parametrize("how", ["env", "package"])
def test_a_cell_without_a_colab_login_says_so_before_any_drive_call(colab, tmp_path, how):
    srv, env = colab(logged_in=False, how=how)
    res = subprocess.run([sys.executable, "-m", "drivestage", "pull",
                          "drive:VOC_datasets/VOC07.zip", str(tmp_path / "data")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr == (
        "Error: no Colab login found: inside Colab, run `from google.colab import auth; "
        "auth.authenticate_user()` in a notebook cell first (once per runtime), then run this "
        "again. `drive.mount()` is not a login for drivestage: it only mounts Drive as files "
        "for the notebook\n")
    assert res.stdout == ""
    # google-auth found the metadata server, and the login was asked for once, at the start.
    assert any(p.startswith("/computeMetadata/v1/instance/service-accounts/default/")
               for p in srv.paths)
    assert not (tmp_path / "data").exists()


_REFRESH_TWICE = textwrap.dedent("""
    import datetime
    from drivestage.drive import auth
    creds = auth.load_credentials()
    print(creds.source, creds.access_token)
    creds.creds.expiry = datetime.datetime(2000, 1, 1)   # expired: the next call refreshes
    creds.ensure_valid()
    print(creds.access_token)
""")


def test_a_cell_with_the_login_refreshes_without_printing_anything(colab):
    srv, env = colab(logged_in=True)
    res = subprocess.run([sys.executable, "-c", _REFRESH_TWICE], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["the", "Colab", "notebook", "login", TOKEN, TOKEN]
    # Two refreshes, each asking the metadata server for a token, and not one line on stderr
    # (google-auth-httplib2 would log two warnings per refresh into the cell).
    tokens = [p for p in srv.paths if "/service-accounts/default/token" in p]
    assert len(tokens) == 2
    assert res.stderr == ""
