"""Credential sources, the PyDrive2 adapter, refresh, the console login and token files.

A small OAuth token endpoint runs on 127.0.0.1 beside the emulator; the emulator accepts
only the token that endpoint hands out, so every refresh is exercised for real.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
import sys
import threading
import types
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from drivestage.drive import auth, login
from drivestage.errors import AuthError, UsageError
from drivestage.drive import connect

FRESH = "fresh-access-token"


class TokenServer:
    """An OAuth 2 token endpoint: refresh tokens, auth codes (with PKCE) and JWT grants."""

    def __init__(self):
        self.calls: list[dict] = []
        self.codes: dict[str, str] = {}      # code -> PKCE challenge
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                outer.calls.append(form)
                status, body = outer.answer(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, form: dict) -> tuple[int, dict]:
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if form.get("refresh_token") == "needs-reauth":  # a Workspace session limit
                return 400, {"error": "invalid_grant",
                             "error_description": "reauth related error (invalid_rapt)",
                             "error_uri": "https://support.google.com/a/answer/9368756",
                             "error_subtype": "invalid_rapt"}
            if form.get("refresh_token") != "good-refresh":
                return 400, {"error": "invalid_grant", "error_description": "Token has been "
                             "expired or revoked."}
            return 200, {"access_token": FRESH, "expires_in": 3600, "token_type": "Bearer"}
        if grant == "authorization_code":
            challenge = self.codes.get(form.get("code", ""))
            verifier = form.get("code_verifier", "")
            derived = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
                .rstrip(b"=").decode()
            if challenge is None or derived != challenge:
                return 400, {"error": "invalid_grant", "error_description": "Bad code."}
            return 200, {"access_token": FRESH, "expires_in": 3600,
                         "refresh_token": "good-refresh", "token_type": "Bearer"}
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assert form.get("assertion", "").count(".") == 2  # a signed JWT
            return 200, {"access_token": FRESH, "expires_in": 3600, "token_type": "Bearer"}
        return 400, {"error": "unsupported_grant_type"}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_server():
    srv = TokenServer()
    yield srv
    srv.stop()


@pytest.fixture
def emu(emulator_factory):
    return emulator_factory(token=FRESH)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


def _token_file(path, token_uri, *, token="stale-token", expired=True, refresh="good-refresh"):
    expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=-1 if expired else 1)
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "cid.apps.example", "client_secret": "csecret",
        "refresh_token": refresh, "token": token, "token_uri": token_uri,
        "expiry": expiry.replace(tzinfo=None).isoformat() + "Z"}))
    return str(path)


def _service_account_key(path, token_uri):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "p", "private_key_id": "k1",
            "private_key": pem, "client_email": "robot@p.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": token_uri}
    path.write_text(json.dumps(info))
    return str(path), info


def test_expired_saved_token_is_refreshed_used_and_saved_back_0600(
        clean_env, emu, token_server, tmp_path):
    path = _token_file(tmp_path / "token.json", token_server.uri, expired=True)
    os.chmod(path, 0o600)
    emu.add_file("data/a.txt", b"hello")
    store = connect(api_root=emu.url, credentials=path)
    assert store.resolve("data/a.txt").size == 5
    assert [c["grant_type"] for c in token_server.calls] == ["refresh_token"]
    saved = json.loads(open(path).read())
    assert saved["token"] == FRESH and saved["refresh_token"] == "good-refresh"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_401_triggers_one_refresh_then_the_call_succeeds(clean_env, emu, token_server,
                                                           tmp_path):
    # Not expired by the clock, but the server no longer accepts it.
    path = _token_file(tmp_path / "token.json", token_server.uri, expired=False)
    store = connect(api_root=emu.url, credentials=path)
    assert store.quota().used == 0
    assert len(token_server.calls) == 1
    statuses = [r.status for r in emu.requests if r.path.endswith("/about")]
    assert statuses == [401, 200]


def test_revoked_refresh_token_is_an_auth_error_naming_the_fix(clean_env, emu, token_server,
                                                               tmp_path):
    path = _token_file(tmp_path / "token.json", token_server.uri, refresh="revoked")
    store = connect(api_root=emu.url, credentials=path)
    with pytest.raises(AuthError, match="auth login") as info:
        store.quota()
    text = str(info.value)
    assert "stale-token" not in text and "could not be refreshed" in text
    assert "expired or revoked" in text  # the token server's own explanation


def test_bearer_token_rejected_gives_auth_error_without_the_token(clean_env, emu):
    store = connect(api_root=emu.url, token="wrong-secret-token")
    with pytest.raises(AuthError) as info:
        store.quota()
    assert "wrong-secret-token" not in str(info.value)
    assert "401" in str(info.value)
    assert "wrong-secret-token" not in repr(store.transport.credentials)


def test_service_account_key_signs_a_jwt_and_works(clean_env, emu, token_server, tmp_path):
    path, info = _service_account_key(tmp_path / "sa.json", token_server.uri)
    store = connect(api_root=emu.url, credentials=path)
    assert store.quota().trash == 0
    assert token_server.calls[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert "robot@p.iam.gserviceaccount.com" in store.transport.credentials.source
    # The same JSON inline, as CI secrets are passed.
    os.environ["DRIVESTAGE_CREDENTIALS"] = json.dumps(info)
    try:
        creds = auth.load_credentials()
    finally:
        del os.environ["DRIVESTAGE_CREDENTIALS"]
    assert "DRIVESTAGE_CREDENTIALS" in creds.source


def test_source_order(clean_env, monkeypatch, token_server, tmp_path):
    tok = _token_file(tmp_path / "t.json", token_server.uri)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "emu-token")
    monkeypatch.setenv("DRIVESTAGE_CREDENTIALS", open(tok).read())
    # An explicit --credentials wins over everything from the environment.
    assert auth.load_credentials(credentials=tok, api_root="http://x/").source.startswith(
        "credentials file")
    # With an emulator, DRIVESTAGE_TOKEN comes before DRIVESTAGE_CREDENTIALS ...
    assert auth.load_credentials(api_root="http://x/").source == "DRIVESTAGE_TOKEN"
    # ... and DRIVESTAGE_CREDENTIALS is never sent to another endpoint implicitly ...
    monkeypatch.delenv("DRIVESTAGE_TOKEN")
    with pytest.raises(AuthError, match="Saved Google credentials are never sent"):
        auth.load_credentials(api_root="http://x/")
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "emu-token")
    # ... and without one DRIVESTAGE_TOKEN is ignored.
    assert auth.load_credentials().source == "DRIVESTAGE_CREDENTIALS"
    monkeypatch.delenv("DRIVESTAGE_CREDENTIALS")
    saved = tmp_path / "config" / "drivestage" / "token.json"
    saved.parent.mkdir(parents=True)
    _token_file(saved, token_server.uri)
    assert auth.load_credentials().source == f"credentials file {saved}"


def test_no_source_lists_every_option(clean_env):
    with pytest.raises(AuthError) as info:
        auth.load_credentials()
    text = str(info.value)
    for option in ("--credentials", "DRIVESTAGE_CREDENTIALS", "drivestage auth login", "Colab",
                   "DRIVESTAGE_TOKEN"):
        assert option in text


@pytest.mark.parametrize("content,needle", [
    ("not json", "is not JSON"),
    ('{"installed": {"client_id": "x", "client_secret": "y"}}', "auth login --client-secrets"),
    ('{"type": "external_account"}', "unknown credentials type"),
    ('{"type": "authorized_user", "client_id": "x"}', "lacks client_secret, refresh_token"),
])
def test_bad_credentials_files(clean_env, tmp_path, content, needle):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=needle):
        auth.load_credentials(credentials=str(path))
    with pytest.raises(UsageError, match="does not exist"):
        auth.load_credentials(credentials=str(tmp_path / "missing.json"))


def test_colab_login_is_used_inside_colab(clean_env, monkeypatch, token_server, tmp_path):
    # google.colab only exists inside Colab; stand in for it. google.auth.default() then
    # finds the credentials the notebook login stored (here: a service-account key).
    path, _ = _service_account_key(tmp_path / "adc.json", token_server.uri)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
    calls = []
    colab = types.ModuleType("google.colab")
    colab.auth = types.SimpleNamespace(authenticate_user=lambda: calls.append("login"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    # In the notebook kernel the login prompt is asked for (Colab returns at once when the
    # user already logged in) ...
    monkeypatch.setattr(auth, "_in_notebook_kernel", lambda: True)
    creds = auth.load_credentials()
    assert calls == ["login"] and creds.source == "the Colab notebook login"
    assert creds.access_token_expired is False  # refreshed through the token endpoint
    assert creds.access_token == FRESH
    # ... while a `!drivestage` cell (a child process, no kernel) uses the stored login only.
    monkeypatch.setattr(auth, "_in_notebook_kernel", lambda: False)
    creds = auth.load_credentials()
    assert calls == ["login"] and creds.source == "the Colab notebook login"


def test_colab_without_a_login_says_which_cell_to_run(clean_env, monkeypatch, tmp_path):
    colab = types.ModuleType("google.colab")
    colab.auth = types.SimpleNamespace(authenticate_user=lambda: None)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    with pytest.raises(AuthError, match=r"auth.authenticate_user\(\)` in a notebook cell first"):
        auth.load_credentials()


def test_console_login_saves_a_0600_token_that_then_works(clean_env, emu, token_server,
                                                          tmp_path, monkeypatch):
    secrets_file = tmp_path / "client_secret.json"
    secrets_file.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.example", "client_secret": "csecret",
        "auth_uri": "https://accounts.example/o/oauth2/auth", "token_uri": token_server.uri,
        "redirect_uris": ["http://localhost"]}}))
    printed: list[str] = []

    def browser(prompt: str) -> str:
        # The user opens the printed URL; Google redirects to localhost with code and state.
        url = next(line.strip() for text in printed for line in text.splitlines()
                   if line.strip().startswith("https://accounts.example"))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
        assert query["access_type"] == "offline" and query["code_challenge_method"] == "S256"
        token_server.codes["the-code"] = query["code_challenge"]
        return f"http://localhost/?state={query['state']}&code=the-code&scope=drive"

    token_path = login.login(str(secrets_file), ask=browser, say=printed.append)
    assert token_path == str(tmp_path / "config" / "drivestage" / "token.json")
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    assert FRESH not in "".join(printed)
    # The saved token is the default source afterwards.
    store = connect(api_root=emu.url, credentials=token_path)
    assert store.quota().used == 0
    # ... but never sent implicitly to another endpoint than Google's.
    with pytest.raises(AuthError, match="no token was given: set DRIVESTAGE_TOKEN"):
        connect(api_root=emu.url)
    # A pasted address from another attempt is refused.
    with pytest.raises(AuthError, match="another login attempt"):
        login.login(str(secrets_file), ask=lambda p: "http://localhost/?state=x&code=y",
                   say=lambda s: None)
    with pytest.raises(AuthError, match="login was refused: Bad code"):
        login.login(str(secrets_file), ask=lambda p: "wrong-code", say=lambda s: None)


def _cli(*args):
    from click.testing import CliRunner

    from drivestage.cli import cli

    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.stderr


def test_cli_an_expired_or_revoked_refresh_token(clean_env, emu, token_server, tmp_path):
    path = _token_file(tmp_path / "token.json", token_server.uri, refresh="revoked")
    code, err = _cli("ls", "drive:", "--api-root", emu.url, "--credentials", path)
    assert code == 1
    assert err == (f"Error: the credentials from credentials file {path} could not be refreshed: "
                   "Google refused the refresh token (invalid_grant: Token has been expired or "
                   "revoked.). It was revoked (or the password changed), or it expired: an OAuth "
                   "app whose consent screen is in Testing mode gets refresh tokens that expire "
                   "after 7 days (publish the app, In production, to keep them). Run "
                   "`drivestage auth login --client-secrets FILE` again.\n")
    assert emu.requests == []  # nothing reached Drive


def test_cli_a_workspace_session_limit(clean_env, emu, token_server, tmp_path):
    path = _token_file(tmp_path / "token.json", token_server.uri, refresh="needs-reauth")
    code, err = _cli("ls", "drive:", "--api-root", emu.url, "--credentials", path)
    assert code == 1
    assert err == (f"Error: the credentials from credentials file {path} need a fresh sign-in: "
                   "the Google Workspace administrator limits how long a sign-in lasts (session "
                   "control, invalid_rapt). Run `drivestage auth login --client-secrets FILE` "
                   "again, or use a service-account key, which session limits do not apply "
                   "to.\n")
    assert "gcloud" not in err  # google-auth's own advice is for gcloud users


def test_a_refresh_prints_nothing(clean_env, emu, token_server, tmp_path, capfd):
    path = _token_file(tmp_path / "token.json", token_server.uri, expired=True)
    code, err = _cli("ls", "drive:", "--api-root", emu.url, "--credentials", path)
    assert code == 0 and err == ""
    assert capfd.readouterr().err == ""
    assert [c["grant_type"] for c in token_server.calls] == ["refresh_token"]


def test_a_bad_http_timeout_is_one_line(clean_env, emu, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "t")
    for bad in ("soon", "0", "-5", "nan"):
        monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", bad)
        code, err = _cli("ls", "drive:", "--api-root", emu.url)
        assert code == 2
        assert err == (f"Error: DRIVESTAGE_HTTP_TIMEOUT={bad!r} is not a number of seconds "
                       "above 0 and at most 1e9 (e.g. 120, the default)\n")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "7.5")
    assert connect(api_root=emu.url).transport.timeout == 7.5


def test_a_bare_www_authenticate_bearer_is_an_auth_error(clean_env, emulator_factory, monkeypatch):
    emu = emulator_factory()
    emu.faults.inject("GET", r"/files", status=401, reason="authError",
                      headers={"WWW-Authenticate": "Bearer"}, times=None)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "t")
    code, err = _cli("ls", "drive:", "--api-root", emu.url)
    assert code == 1
    assert err.startswith("Error: list drive: (the top of My Drive): Drive refused the "
                          "credentials (HTTP 401 authError")
    assert "Traceback" not in err and len(err.splitlines()) == 1
