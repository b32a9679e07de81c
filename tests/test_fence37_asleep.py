"""fence37: a holder of the run's lease silent past the lease (a machine asleep: SIGSTOP)
after its lease check passed, while a new trainer took the stale lease over and pushed the
same names; woken (SIGCONT), it goes on. attacklease36_asleep covers a push into a folder
this account may delete in; here the other paths that write: a pair sent alone
(``DriveFolder.send_alone``: a stop's save), whose new checkpoint copy, made after the take-
over, is its own and removed; and a shared drive where the account is a Contributor (it
deletes nothing: a push and a lone send update the pair in place, its sidecar first:
drivestage.sidecar_phases, trainer.alone_in_place), where nothing is written once the lease
is lost. Each: the new holder's pair is what Drive holds, alone, and the woken one fails with
LeaseLostError. A child process holds the lease and stops itself at the hook; the real
PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import pytest

from _lease_pairs import holder_script, save_pair, woken_after_a_take_over

NAME = "epoch_001.pt"

CHILD = holder_script("""
    [at] = args

    def sleep():
        if not asleep:
            asleep.append(1)
            os.kill(os.getpid(), signal.SIGSTOP)

    checked, sent = lease.check, folder._store.upload

    def check():   # (asleep right after the check before the send passed)
        checked()
        if threading.current_thread() is threading.main_thread():
            sleep()

    def upload(*a, **k):   # (asleep at its first upload, the send planned against Drive)
        sleep()
        return sent(*a, **k)

    if at == "check":
        lease.check = check
    else:
        folder._store.upload = upload
""")


def _woken_after_a_take_over(emulator, tmp_path, dest: str, how: str, at: str) -> str:
    """The child sends its pair (``how``), asleep at ``at``; the new holder takes the stale
    lease over and pushes its own pair of those names; the child is woken. Its output."""
    save_pair(tmp_path / "old", NAME, 1.5, 1500.0, values=1 << 12)
    return woken_after_a_take_over(emulator, tmp_path, CHILD, dest, how, at, values=1 << 12)


def test_a_pair_sent_alone_after_a_take_over_leaves_nothing(drive_env, emulator, tmp_path):
    """Asleep at its checkpoint's upload: woken, the copy it makes is found its own at the
    check after the upload and removed; its sidecar is never sent."""
    out = _woken_after_a_take_over(emulator, tmp_path, "drive:runs/exp", "alone", "upload")
    assert out.strip() == "failed LeaseLostError"


@pytest.mark.parametrize("how", ["push", "alone"])
def test_a_contributors_in_place_update_after_a_take_over_writes_nothing(
        drive_env, emulator, tmp_path, how):
    """A shared drive's Contributor: the old holder's pair is on Drive (its earlier push);
    its new pair would update that pair in place (the sidecar first), after the new holder
    updated it in place with its own."""
    from trainer.drive import DriveFolder

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)
    dest = "drive:shared/Team/run"
    first = tmp_path / "first"
    save_pair(first, NAME, 1.0, 1000.0, values=1 << 12)
    DriveFolder(dest, str(first)).push()   # (the run's pair there, before the sleep)
    out = _woken_after_a_take_over(emulator, tmp_path, dest, how, "check")
    assert out.strip() == "failed LeaseLostError"
