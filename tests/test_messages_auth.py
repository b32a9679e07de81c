"""docs/troubleshooting.md, "Credentials and login": each message made to happen (see
tests/_messages.py).

The commands run in this process against the emulator, an OAuth token endpoint on loopback
(tests/test_auth.py's, with the answers Google gives) and a stand-in for Colab's metadata
server that google-auth finds unmocked. Nothing leaves the machine.
"""
from __future__ import annotations

import json
import re
import socket
import sys
import threading
import urllib.parse
from types import SimpleNamespace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from _messages import renders, shown
from drivestage.cli import cli
from test_auth import FRESH, TokenServer, _token_file

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    """``drivestage ARGS`` in this process: its exit code and its stderr."""
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stderr


def error(err: str) -> str:
    """The ``Error:`` line, the last on stderr (for a multi-line error: from it to the end)."""
    at = err.rfind("\nError: ") + 1
    assert err.startswith("Error: ", at), err
    return err[at:]


@pytest.fixture
def clean_env(monkeypatch, tmp_path, local_state):
    """No credentials anywhere: no variables, an empty home, not inside Colab."""
    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE", "DRIVESTAGE_HTTP_TIMEOUT", "DRIVESTAGE_DEBUG",
                 "GOOGLE_APPLICATION_CREDENTIALS", "COLAB_RELEASE_TAG", "GCE_METADATA_HOST",
                 "GCE_METADATA_IP", "GCE_METADATA_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return tmp_path


@pytest.fixture
def token_server():
    srv = TokenServer()
    yield srv
    srv.stop()


def _closed_port_uri(sock: socket.socket) -> str:
    """A token endpoint on loopback where nothing listens: ``sock`` bound there, never
    listening (a connection is refused). The caller holds it while the command runs: a port
    closed before is the kernel's to give again (another xdist worker's server, a client's
    own end), and the command then reached that instead of a refusal."""
    sock.bind(("127.0.0.1", 0))
    return f"http://127.0.0.1:{sock.getsockname()[1]}/token"


# --------------------------------------------------------------------------- where from

@renders("no Google Drive credentials found. Use one of:")
def test_no_credentials_anywhere(clean_env):
    code, err = run("ls", "drive:")
    assert code == 1
    text = error(err)
    assert "--credentials FILE" in text and "drivestage auth login" in text
    shown("no Google Drive credentials found. Use one of:", text)


@renders("but no token was given: set DRIVESTAGE_TOKEN")
def test_an_api_root_without_a_token(clean_env, emulator, token_server):
    # A saved Google login exists, and is not sent to the other endpoint.
    saved = clean_env / "config" / "drivestage" / "token.json"
    saved.parent.mkdir(parents=True)
    _token_file(saved, token_server.uri)
    code, err = run("ls", "drive:", "--api-root", emulator.url)
    assert code == 1
    assert emulator.requests == [] and token_server.calls == []
    shown("but no token was given: set DRIVESTAGE_TOKEN", error(err))


# --------------------------------------------------------------------------- Colab

class MetadataServer:
    """Colab's metadata server as a ``!`` cell sees it: present, and the notebook login's
    service account ``404`` until ``auth.authenticate_user()``; once logged in, the token
    request answers ``token_status``."""

    def __init__(self, logged_in: bool, token_status: int = 200):
        account = "/computeMetadata/v1/instance/service-accounts/default/"
        self.paths: list[str] = []
        asked = self.paths

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                asked.append(path)
                if self.headers.get("Metadata-Flavor") != "Google":
                    self._send(403, b"Missing Metadata-Flavor header")
                elif path == "/":
                    self._send(200, b"computeMetadata/")
                elif path == account and logged_in:
                    self._send(200, json.dumps({"email": "student@gmail.com",
                                                "aliases": ["default"]}).encode(),
                               "application/json")
                elif path == account + "token" and logged_in and token_status != 200:
                    self._send(token_status, b"Internal error: token service unavailable")
                elif path == account + "token" and logged_in:
                    self._send(200, json.dumps({"access_token": "colab-user-token",
                                                "expires_in": 3599}).encode(),
                               "application/json")
                else:
                    self._send(404, b"<p>Not Found</p>", "text/html")

            def _send(self, status, data, ctype="text/plain"):
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        # google-auth's message names the server's address: a port with "404" in it must
        # not read as Colab's "no login" answer (it did once), so one is taken when free.
        for port in [*range(40400, 40500), 0]:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def colab(clean_env, monkeypatch):
    """``colab(logged_in, token_status=200)``: this process is a ``!drivestage`` cell in
    Colab, whose metadata server google-auth finds by ``GCE_METADATA_HOST`` (read once, when
    google-auth is imported: set here as that import would have read it)."""
    from google.auth.compute_engine import _metadata

    servers = []

    def make(logged_in: bool, token_status: int = 200) -> MetadataServer:
        srv = MetadataServer(logged_in, token_status)
        servers.append(srv)
        monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260801-060000_RC00")
        monkeypatch.setenv("GCE_METADATA_HOST", srv.host)
        monkeypatch.setenv("GCE_METADATA_IP", srv.host)
        monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", srv.host)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@renders("no Colab login found:")
def test_a_colab_cell_before_the_notebook_login(colab, tmp_path):
    srv = colab(logged_in=False)
    code, err = run("pull", "drive:VOC_datasets/VOC07.zip", str(tmp_path / "data"))
    assert code == 1
    assert not (tmp_path / "data").exists()
    # google-auth found the metadata server, and the login's account was asked for.
    assert "/computeMetadata/v1/instance/service-accounts/default/" in srv.paths
    shown("no Colab login found:", error(err))


@renders("could not get a token from Colab's metadata server")
def test_colab_metadata_server_refuses_the_token(colab, tmp_path):
    colab(logged_in=True, token_status=403)
    code, err = run("pull", "drive:VOC_datasets/VOC07.zip", str(tmp_path / "data"))
    assert code == 1
    text = error(err)
    assert "service-accounts/default/token" in text and "auth.authenticate_user()" in text
    # No Python reprs: not the tuple google-auth raises, nor the raw answer it appends.
    assert "((" not in text and "Response:" not in text and "<" not in text
    assert "service-accounts/default/token from the Google Compute Engine metadata " \
        "service. Status: 403);" in text
    shown("could not get a token from Colab's metadata server", text)


# --------------------------------------------------------------------------- Drive's answers

@renders("the credentials are valid but may not use Google Drive")
def test_a_token_without_the_drive_scope(emulator, drive_env, local_state):
    emulator.set_token_scopes("test-token", [CLOUD_PLATFORM])  # Colab Enterprise's token
    code, err = run("ls", "drive:")
    assert code == 1
    shown("the credentials are valid but may not use Google Drive", error(err))


@renders("the Google Workspace administrators of this account have turned off Drive "
         "access for apps")
def test_a_workspace_account_whose_admins_turned_drive_apps_off(emulator, drive_env, local_state):
    # A university or company account: its admins allow Drive in the browser, not through apps.
    emulator.faults.inject(path=r"/files", reason="domainPolicy", times=None)
    code, err = run("ls", "drive:")
    assert code == 1
    text = error(err)
    assert "(HTTP 403 domainPolicy: The domain administrators have disabled Drive apps.)" in text
    assert "use another Google account (a personal one)" in text
    shown("the Google Workspace administrators of this account have turned off Drive access "
          "for apps", text)
    assert sum(1 for r in emulator.requests if r.status == 403) == 1  # not retried


@renders("the Google Cloud project of these credentials has not enabled the Google Drive API")
def test_credentials_of_a_project_without_the_drive_api(emulator, drive_env, local_state):
    # A new service account's project, or an OAuth client's, where nobody enabled the API:
    # Google's most common 403. It was "permission denied ... check the sharing settings".
    emulator.faults.inject(path=r"/files", reason="accessNotConfigured", times=None)
    code, err = run("ls", "drive:")
    assert code == 1
    text = error(err)
    assert "(HTTP 403 accessNotConfigured: Google Drive API has not been used in project " \
        "1234567890 before or it is disabled. Enable it by visiting https://console." \
        "developers.google.com/apis/api/drive.googleapis.com/overview?project=1234567890 " in text
    assert "sharing" not in text and text.count("\n") == 1
    shown("the Google Cloud project of these credentials has not enabled the Google Drive API",
          text)
    assert sum(1 for r in emulator.requests if r.status == 403) == 1  # not retried


@renders("these credentials may only open files this app created or was given")
def test_a_file_the_app_was_not_granted(emulator, drive_env, local_state, tmp_path):
    emulator.add_file("VOC/set.zip", b"zip")
    emulator.faults.inject(path=r"alt=media", reason="appNotAuthorizedToFile", times=None)
    code, err = run("pull", "drive:VOC/set.zip", str(tmp_path / "d"))
    assert code == 1
    text = error(err)
    assert "; HTTP 403 appNotAuthorizedToFile: The user has not granted" in text
    assert "drivestage auth login" in text
    shown("these credentials may only open files this app created or was given", text)


@renders("Drive refused the credentials (")
def test_a_token_the_emulator_does_not_accept(emulator_factory, clean_env, monkeypatch):
    # An expired or mistyped bare token: nothing to refresh it with.
    emu = emulator_factory(token="the-emulators-token")
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "another-token")
    code, err = run("ls", "drive:", "--api-root", emu.url)
    assert code == 1
    text = error(err)
    assert "HTTP 401" in text and "another-token" not in text
    shown("Drive refused the credentials (", text)


@renders("<redacted>")
def test_a_401_page_repeating_the_token(emulator, clean_env, monkeypatch):
    secret = "ya29.s3cr3t-access-token"
    emulator.faults.inject(path=r"/files", status=401, reason="authError",
                           message=f"Invalid Credentials: Authorization: Bearer {secret}",
                           times=None)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", secret)
    code, err = run("ls", "drive:", "--api-root", emulator.url)
    assert code == 1
    text = error(err)
    assert secret not in err and "Bearer <redacted>" in text
    shown("<redacted>", text)


# --------------------------------------------------------------------------- refreshes

@renders("could not be refreshed: Google refused the refresh token")
def test_a_revoked_refresh_token(clean_env, emulator, token_server, tmp_path):
    path = _token_file(tmp_path / "token.json", token_server.uri, refresh="revoked")
    code, err = run("ls", "drive:", "--api-root", emulator.url, "--credentials", path)
    assert code == 1
    assert emulator.requests == []
    shown("could not be refreshed: Google refused the refresh token", error(err))


@renders("need a fresh sign-in: the Google Workspace administrator limits how long a "
         "sign-in lasts")
def test_a_workspace_session_limit(clean_env, emulator, token_server, tmp_path):
    path = _token_file(tmp_path / "token.json", token_server.uri, refresh="needs-reauth")
    code, err = run("ls", "drive:", "--api-root", emulator.url, "--credentials", path)
    assert code == 1
    shown("need a fresh sign-in: the Google Workspace administrator limits how long a "
          "sign-in lasts", error(err))


class DeletedClientTokenServer(TokenServer):
    """Google's token endpoint after the OAuth client was deleted."""

    def answer(self, form):
        return 401, {"error": "invalid_client", "error_description": "The OAuth client was "
                     "deleted."}


@renders("the credentials … could not be refreshed")
def test_a_refresh_for_a_deleted_oauth_client(clean_env, emulator, tmp_path):
    srv = DeletedClientTokenServer()
    try:
        path = _token_file(tmp_path / "token.json", srv.uri)
        code, err = run("ls", "drive:", "--api-root", emulator.url, "--credentials", path)
    finally:
        srv.stop()
    assert code == 1
    text = error(err)
    assert "invalid_client" in text and "Google refused the refresh token" not in text
    shown("the credentials … could not be refreshed", text)


class FailingTokenServer(TokenServer):
    """Google's token endpoint during an outage of its own."""

    def answer(self, form):
        return 503, {"error": "internal_failure", "error_description": "Backend Error"}


@renders("Google's token server failed to refresh the credentials from …, three times in a row")
def test_a_refresh_the_token_server_fails(clean_env, emulator, tmp_path, monkeypatch):
    # It was "could not be refreshed (internal_failure: Backend Error). Run `drivestage auth
    # login` again or pass fresh --credentials": a new login for a server's outage.
    from google.auth import _exponential_backoff
    from google.oauth2 import _client

    # google-auth's own three tries, 1 s and 2 s apart: the same three tries a hundredth of a
    # second apart (3 s of this test's 3.1 were those waits; the tries and the answer are alike).
    # (google-auth's class names itself in its super(): the module _client reads is replaced)
    def quick(*args, **kwargs):
        return _exponential_backoff.ExponentialBackoff(
            *args, **{**kwargs, "initial_wait_seconds": 0.01})

    monkeypatch.setattr(_client, "_exponential_backoff", SimpleNamespace(ExponentialBackoff=quick))
    srv = FailingTokenServer()
    try:
        path = _token_file(tmp_path / "token.json", srv.uri)
        code, err = run("ls", "drive:", "--api-root", emulator.url, "--credentials", path)
    finally:
        srv.stop()
    assert code == 1
    assert emulator.requests == [] and len(srv.calls) == 3   # google-auth's own three tries
    text = error(err)
    assert "(internal_failure: Backend Error), three times in a row: a failure of the server, " \
        "not of the credentials. Try again in a few minutes." in text, text
    assert "auth login" not in text
    shown("Google's token server failed to refresh the credentials from …, three times in a "
          "row", text)


@renders("could not reach the token server")
def test_the_token_server_cannot_be_reached(clean_env, emulator, tmp_path):
    with socket.socket() as bound:
        path = _token_file(tmp_path / "token.json", _closed_port_uri(bound))
        code, err = run("ls", "drive:", "--api-root", emulator.url, "--credentials", path)
    assert code == 1
    assert emulator.requests == []
    shown("could not reach the token server", error(err))
    # the reason in words, not the bare errno ("(111)": ux35)
    assert error(err).rstrip().endswith(
        f"from credentials file {path} (Connection refused)"), (err, path)


class PortalTokenServer(TokenServer):
    """A filter's or captive portal's page where the token endpoint's JSON should be."""

    PAGE = b"<html><title>Hotel WiFi</title><body>Please log in</body></html>"

    def __init__(self):
        super().__init__()
        page = self.PAGE

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        self.server.RequestHandlerClass = Handler


@renders("could not reach the token server")
def test_a_token_server_answered_by_a_web_page(clean_env, emulator, tmp_path):
    # It was "list drive: (the top of My Drive): the server's answer is not what Drive sends
    # (TypeError: string indices must be integers, not 'str'); is --api-root ... a Drive
    # API?": Drive blamed for the token server's page (attackserver42).
    srv = PortalTokenServer()
    try:
        path = _token_file(tmp_path / "token.json", srv.uri)
        code, err = run("ls", "drive:", "--api-root", emulator.url, "--credentials", path)
    finally:
        srv.stop()
    assert code == 1
    assert emulator.requests == []
    text = error(err)
    shown("could not reach the token server", text)
    assert text.rstrip().endswith(f"from credentials file {path} (its answer is a web page "
                                  "('<html> Hotel WiFi Please log in'), not a token: a network "
                                  "filter or a captive portal answers in its place)"), text


# --------------------------------------------------------------------------- credentials files

def _service_account_key(path, private_key: str) -> str:
    """A service-account key file as the Cloud console downloads it, with ``private_key``."""
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "p", "private_key_id": "k1",
        "private_key": private_key, "client_email": "robot@p.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}))
    return str(path)


def _credentials_error(path: str) -> str:
    code, err = run("ls", "drive:", "--credentials", path)
    assert code == 2
    return error(err)


@renders("credentials file … does not exist")
def test_a_credentials_file_that_is_not_there(clean_env, tmp_path):
    text = _credentials_error(str(tmp_path / "key.json"))
    shown("credentials file … does not exist", text)


@renders("cannot read credentials file")
def test_a_credentials_file_that_is_a_folder(clean_env, tmp_path):
    shown("cannot read credentials file", _credentials_error(str(tmp_path)))


@renders("is an OAuth client secret, not credentials")
def test_a_client_secret_passed_as_credentials(clean_env, tmp_path):
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": {"client_id": "cid", "client_secret": "cs"}}))
    shown("is an OAuth client secret, not credentials", _credentials_error(str(path)))


@renders("is not JSON; expected a service-account key")
def test_credentials_that_are_not_json(clean_env, tmp_path, monkeypatch):
    path = tmp_path / "key.json"
    path.write_text("-----BEGIN PRIVATE KEY-----\n")
    shown("is not JSON; expected a service-account key", _credentials_error(str(path)))
    # DRIVESTAGE_CREDENTIALS holds the JSON itself; a path there is not JSON either, and
    # JSON that is not an object is said so (the entry's other wording).
    monkeypatch.setenv("DRIVESTAGE_CREDENTIALS", str(path))
    code, err = run("ls", "drive:")
    assert code == 2
    shown("is not JSON; expected a service-account key", error(err))
    monkeypatch.setenv("DRIVESTAGE_CREDENTIALS", '["key.json"]')
    code, err = run("ls", "drive:")
    assert (code, error(err)) == (2, "Error: DRIVESTAGE_CREDENTIALS is not a JSON object\n")


@renders("unknown credentials type")
def test_credentials_of_an_unknown_type(clean_env, tmp_path):
    path = tmp_path / "key.json"
    path.write_text(json.dumps({"type": "external_account", "audience": "x"}))
    shown("unknown credentials type", _credentials_error(str(path)))


@renders("not a usable service-account key")
def test_a_damaged_service_account_key(clean_env, tmp_path):
    # A copy-paste into a secret that lost the key's end.
    key = _service_account_key(tmp_path / "key.json",
                               "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n")
    line = _credentials_error(key)
    shown("not a usable service-account key", line)
    # The library's words, not the Python objects beside them (cryptography 43's, and
    # Colab's cryptography 50's: "Unable to load PEM file. See https://… MalformedFraming").
    assert re.search(r"not a usable service-account key \((Could not deserialize key data\. The "
                     r"data may be in an incorrect format|Unable to load PEM file\. )", line), line
    assert "OpenSSLError" not in line and "', [" not in line
    assert line.rstrip().endswith("download a new JSON key for the service account")


@renders("token lacks")
def test_a_token_file_without_its_refresh_token(clean_env, tmp_path):
    path = tmp_path / "token.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "cid",
                                "client_secret": "cs", "token": "t"}))
    text = _credentials_error(str(path))
    assert "refresh_token" in text
    shown("token lacks", text)


# --------------------------------------------------------------------------- auth login

def _client_secrets(tmp_path, token_uri: str) -> str:
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.example", "client_secret": "csecret",
        "auth_uri": "https://accounts.example/o/oauth2/auth", "token_uri": token_uri,
        "redirect_uris": ["http://localhost"]}}))
    return str(path)


def login(tmp_path, token_uri: str, pasted: str, code: int = 1) -> str:
    """``drivestage auth login`` with ``pasted`` at its prompt: the error line; no token
    saved."""
    token = tmp_path / "token.json"
    exit_code, err = run("auth", "login", "--client-secrets", _client_secrets(tmp_path, token_uri),
                         "--token-file", str(token), input=pasted + "\n")
    assert exit_code == code, err
    assert not token.exists()
    return error(err)


@renders("the login was refused:")
def test_a_login_code_the_token_server_rejects(clean_env, token_server, tmp_path):
    text = login(tmp_path, token_server.uri, "http://localhost/?code=4/used-already&scope=drive")
    assert [c["grant_type"] for c in token_server.calls] == ["authorization_code"]
    assert "Bad code." in text
    shown("the login was refused:", text)


@renders("no code was pasted")
def test_a_login_with_nothing_pasted(clean_env, token_server, tmp_path):
    # An empty line is asked again; a line of spaces is an answer.
    shown("no code was pasted", login(tmp_path, token_server.uri, "\n   "))
    assert token_server.calls == []


@renders("the pasted address has no code=...")
def test_a_login_with_the_consent_page_pasted(clean_env, token_server, tmp_path):
    pasted = "http://localhost/?scope=https://www.googleapis.com/auth/drive"
    shown("the pasted address has no code=...", login(tmp_path, token_server.uri, pasted))
    assert token_server.calls == []


class SecondConsentTokenServer(TokenServer):
    """Google's token endpoint for a user who consented before: no refresh token."""

    def answer(self, form):
        return 200, {"access_token": FRESH, "expires_in": 3600, "token_type": "Bearer"}


@renders("the token server gave no refresh token")
def test_a_login_that_brings_no_refresh_token(clean_env, tmp_path):
    srv = SecondConsentTokenServer()
    try:
        text = login(tmp_path, srv.uri, "the-code")
    finally:
        srv.stop()
    assert [c["grant_type"] for c in srv.calls] == ["authorization_code"]
    shown("the token server gave no refresh token", text)


@renders("the pasted address belongs to another login attempt")
def test_a_login_with_an_older_address_pasted(clean_env, token_server, tmp_path):
    pasted = "http://localhost/?state=from-an-earlier-run&code=4/abc&scope=drive"
    shown("the pasted address belongs to another login attempt",
          login(tmp_path, token_server.uri, pasted))
    assert token_server.calls == []


@renders("client secrets file … does not exist")
def test_login_with_a_missing_client_secrets_file(clean_env, tmp_path):
    code, err = run("auth", "login", "--client-secrets", str(tmp_path / "client.json"))
    assert code == 2
    shown("client secrets file … does not exist", error(err))


@renders("client secrets file … is not JSON")
def test_login_with_a_saved_web_page_as_client_secrets(clean_env, tmp_path):
    path = tmp_path / "client.json"
    path.write_text("<!DOCTYPE html><html><body>Credentials</body></html>")
    code, err = run("auth", "login", "--client-secrets", str(path))
    assert code == 2
    shown("client secrets file … is not JSON", error(err))


@renders("is not an OAuth client secret (expected an 'installed'")
def test_login_with_a_service_account_key(clean_env, tmp_path):
    key = _service_account_key(tmp_path / "key.json", "-----BEGIN PRIVATE KEY-----\n")
    code, err = run("auth", "login", "--client-secrets", key)
    assert code == 2
    shown("is not an OAuth client secret (expected an 'installed'", error(err))


# --------------------------------------------------------------------------- local settings

@renders("DRIVESTAGE_HTTP_TIMEOUT=… is not a number of seconds above 0")
def test_a_bad_http_timeout(emulator, drive_env, local_state, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "2m")
    code, err = run("ls", "drive:")
    assert code == 2
    assert emulator.requests == []
    shown("DRIVESTAGE_HTTP_TIMEOUT=… is not a number of seconds above 0", error(err))


def _logs(tmp_path) -> str:
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"weights")
    return str(src)


@renders("drivestage's state folder … is a file, or lies under one")
def test_a_state_folder_that_is_a_file(emulator, drive_env, local_state, tmp_path,
                                       monkeypatch):
    state = tmp_path / "state-file"
    state.write_text("not a folder")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    code, err = run("push", _logs(tmp_path), "drive:run")
    assert code == 2
    assert emulator.find("run") is None
    shown("drivestage's state folder … is a file, or lies under one", error(err))


@renders("cannot create drivestage's state folder")
def test_a_state_folder_that_cannot_be_created(emulator, drive_env, local_state, tmp_path,
                                               monkeypatch):
    # A name no file system takes (permissions would not stop root, who runs CI containers).
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / ("x" * 300) / "drivestage"))
    code, err = run("push", _logs(tmp_path), "drive:run")
    assert code == 2   # a bad setting, as a file there is (leftovers40)
    text = error(err)
    assert "File name too long" in text
    assert emulator.find("run") is None
    shown("cannot create drivestage's state folder", text)
