"""The stop's line of a trainer that lost the run's lease, or found it held when it first
reached Drive, as ``trainer train`` prints it (``stop_lines.stopped_text`` with the stop's
name and detail): what fence37 and attackfence37 assert."""
from __future__ import annotations

import os
import re
import socket

#: What every such line ends with: what this trainer does now, and how to go on with it.
TAIL = (", and this trainer pushes nothing more there (it would replace that one's "
        "checkpoints); that one goes on from Drive. To go on with this one instead, stop "
        "that one, then start this one again with --take-over (--resume auto continues "
        "from epoch_001.pt)")


def stop_line(stop, out_dir: str) -> str:
    """The line of ``stop`` at epoch 1, iteration 3, epoch_001.pt saved in ``out_dir``."""
    from trainer.stop_lines import stopped_text

    return "Error: " + stopped_text(f"stopped by {stop.name} at epoch 1, iteration 3",
                                    "epoch_001.pt", out_dir, stop.detail)


def assert_line(stop, out_dir: str, want: str) -> None:
    """``stop``'s line is ``want`` (its "renewed N s ago" read as 0 s)."""
    line = stop_line(stop, out_dir)
    assert re.sub(r"renewed \d+ s ago", "renewed 0 s ago", line) == want, line


def refused_while_held_before(folder, holder, stop, out_dir: str, dest: str) -> None:
    """``folder`` (a trainer's, as ``held_folder`` made it: its lease not taken, Drive down)
    pushes nothing (LeaseLostError) while ``holder`` holds the run's lease on ``dest``; then
    ``holder`` and this process's leases are released. The stop's line says the lease was
    held before this trainer first reached Drive."""
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    try:
        try:
            folder.push()
        except LeaseLostError:
            pass
        else:
            raise AssertionError("pushed while another trainer holds the lease")
    finally:
        holder.release()
        release_all()
    who = f"pid {os.getpid()} on {socket.gethostname()}"
    assert_line(stop, out_dir, (
        f"Error: stopped by another trainer holding the run's lease at epoch 1, iteration 3: "
        f"epoch_001.pt is saved in {out_dir} only: {who} holds the run's lease on {dest} "
        f"(renewed 0 s ago; held before this trainer first reached Drive, which was down "
        f"at its start)" + TAIL))
