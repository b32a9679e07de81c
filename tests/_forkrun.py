"""The client of a fork server of ``python -m CLI`` (tests/_trainer_proc.py's ``serve``):
``python tests/_forkrun.py SOCKET ARGS...`` runs ``python -m CLI ARGS`` forked from the server,
on this process's standard streams, environment and folder, and exits as it did (a child
killed by a signal: killed by that signal). Only the standard library: it starts in
milliseconds where the command it stands for imports torch."""
import json
import os
import signal
import socket
import sys


def main() -> None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sys.argv[1])
    socket.send_fds(conn, [json.dumps({"args": sys.argv[2:], "env": dict(os.environ),
                                       "cwd": os.getcwd()}).encode()], [0, 1, 2])
    answer = b""
    while answer.count(b"\n") < 2:   # {"pid": ...}, then {"status": ...} at its end
        data = conn.recv(4096)
        if not data:
            sys.exit("the trainer fork server ended before its child")
        answer += data
    code = os.waitstatus_to_exitcode(json.loads(answer.split(b"\n")[1])["status"])
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
