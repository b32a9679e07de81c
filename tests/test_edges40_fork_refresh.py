"""edges40: a process forked while a thread of it refreshed the access token (a user's
``multiprocessing`` pool of fork workers over one store, a fork server). That thread held
the credentials' refresh lock while the token server answered; the child has no such
thread, and its own first refresh waited for that lock forever.

A token endpoint on 127.0.0.1 holds the parent's refresh until the test lets it go; the
child refreshes and lists through the emulator, reporting through a pipe read with a bound
(tests/test_attacksvc39_fork.py). Real PyDrive2 + googleapiclient + httplib2 + google-auth."""
from __future__ import annotations

import threading

from drivestage.drive import connect
from test_attacksvc39_fork import _forked
from test_auth import FRESH, TokenServer, _token_file, clean_env, emu  # noqa: F401


class HeldTokenServer(TokenServer):
    """A token endpoint that holds its first answer until ``go`` is set (``held``: it has
    that request); every later one is answered at once."""

    def __init__(self) -> None:
        self.held, self.go = threading.Event(), threading.Event()
        super().__init__()

    def answer(self, form: dict) -> tuple[int, dict]:
        if not self.held.is_set():
            self.held.set()
            self.go.wait(30)
        return super().answer(form)


def test_a_child_forked_during_a_refresh_refreshes_on_its_own(clean_env, emu,  # noqa: F811
                                                             tmp_path):
    server = HeldTokenServer()
    emu.add_file("data/a.txt", b"hello")
    path = _token_file(tmp_path / "token.json", server.uri, expired=False)
    store = connect(api_root=emu.url, credentials=path)
    creds = store.transport.credentials
    refreshing = threading.Thread(target=creds.refresh)
    try:
        refreshing.start()
        assert server.held.wait(10)   # the parent's thread holds the lock, its answer held

        def child() -> None:
            creds.refresh()   # (its own: the parent's thread is not in this process)
            assert creds.access_token == FRESH
            assert store.resolve("data/a.txt").size == 5

        assert _forked(child, bound_s=10)() == "ok"
    finally:
        server.go.set()
        refreshing.join(10)
        server.stop()
    assert not refreshing.is_alive()
    assert creds.access_token == FRESH
