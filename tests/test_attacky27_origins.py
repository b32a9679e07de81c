"""attacky27: the connections a thread keeps to the hosts downloads are redirected to.

Drive sends a redirected download's bytes from a signed address whose host varies from file
to file (``doc-0k-9o-docs.googleusercontent.com``, ``doc-10-…``). drivestage's streams keep
one kept-alive connection per origin and thread (fidelity27) and never let one go: a folder
pull or a mirror that read many files held a socket open for every host it was ever sent
to, until the thread ended (a mirror's: never), towards the process's limit on open files.
Now a thread keeps the connections of its few most recently used origins.
"""
from __future__ import annotations

import os

from _envs import env  # noqa: F401  (a fixture)
from _proxy import Proxy
from drivestage.drive import connect
from drivestage.drive.transport import KEPT_ORIGINS


def _open_to(ports: set[int]) -> int:
    """This process's TCP sockets connected to one of ``ports``."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[8:-1])
    count = 0
    with open("/proc/self/net/tcp", encoding="ascii") as fh:
        for row in list(fh)[1:]:
            cols = row.split()
            remote_port, state, inode = int(cols[2].split(":")[1], 16), cols[3], cols[9]
            if inode in mine and remote_port in ports and state == "01":
                count += 1
    return count


def test_a_thread_keeps_no_connection_to_every_host_it_was_redirected_to(emulator, env):
    n = 12
    datas = [os.urandom(1000 + i) for i in range(n)]
    for i, data in enumerate(datas):
        emulator.add_file(f"A/f{i}.bin", data)
    store = connect(api_root=emulator.url, token="test-token")
    entries = [store.resolve(f"A/f{i}.bin") for i in range(n)]
    proxies = [Proxy(emulator.url).start() for _ in range(n)]
    try:
        ports = {int(p.url.rsplit(":", 1)[1].strip("/")) for p in proxies}
        for entry, data, proxy in zip(entries, datas, proxies):
            # Each file's bytes from another host (here: another port, another origin).
            emulator.faults.redirect_media(307, times=1, origin=proxy.url)
            assert store.fetch_range(entry, 0, entry.size) == data
            assert proxy.count("GET", "^/download/") == 1
        assert _open_to(ports) <= KEPT_ORIGINS
        # Reads go on well after connections were let go (the API's one too, at times).
        emulator.faults.redirect_media(307, times=1, origin=proxies[-1].url)
        assert store.fetch_range(entries[0], 0, entries[0].size) == datas[0]
        assert _open_to(ports) <= KEPT_ORIGINS
    finally:
        for proxy in proxies:
            proxy.stop()
