"""A Google Drive mount reached through a symlink (attackds30). Colab notebooks commonly
shorten the mount's path with ``!ln -s /content/drive/MyDrive /mydrive`` and then write
``/mydrive/...``. When the mount stopped (ENOTCONN), fidelity29's one-line message did not
see through the link: a push said "<link> is a file, not a folder" (exit 2), a pull the bare
"Transport endpoint is not connected", and a training run with ``train.out_dir`` there
trained every later epoch for nothing (its epoch-end check, :func:`lost_mount`, said "not
lost"). The mount is tests/_drivemount.py's FUSE stand-in, in the kernel.
"""
from __future__ import annotations

import os

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from _messages import error_line as error
from drivestage.lost_mounts import lost_mount
from test_messages_fidelity27 import logs, run
from test_messages_fidelity29 import stopped


def test_a_drive_mount_reached_through_a_symlink_that_stopped(local_state, tmp_path,
                                                              working_drive_mount):
    mount = working_drive_mount
    (mount.point / "MyDrive").mkdir()
    link = tmp_path / "mydrive"
    os.symlink(mount.point / "MyDrive", link)
    dest = link / "Models" / "logs"
    code, err = run("push", logs(tmp_path, **{"epoch_001.pt": b"1" * 100}), str(dest))
    assert code == 0, err
    # The warning names the drive: path to push to (it was "a drive: path").
    assert "Push to drive:Models/logs instead" in err, err

    mount.disconnect()
    assert lost_mount(str(link / "runs" / "exp1")) == str(mount.point)
    code, err = run("push", logs(tmp_path, **{"epoch_002.pt": b"2" * 100}), str(dest))
    assert (code, error(err)) == (1, f"Error: {dest}: {stopped(mount)}"), err
    src = tmp_path / "set.bin"
    src.write_bytes(b"data" * 100)
    code, err = run("pull", str(src), str(link / "data"))
    assert (code, error(err)) == (
        1, f"Error: cannot stage {src} into {link / 'data'}: {stopped(mount)}"), err


def test_colabs_mount_path_made_a_link_by_the_user_is_a_folder_like_any(local_state, tmp_path,
                                                                         monkeypatch):
    """A notebook run on a local runtime, with ``/content/drive`` a link the user made to a
    folder synced with Drive (Google Drive for desktop): it was refused as "Drive is not
    mounted there", though the folder is the user's own choice."""
    import drivestage.localfs

    content = tmp_path / "content"
    monkeypatch.setattr(drivestage.localfs, "COLAB_CONTENT", str(content))
    (tmp_path / "synced" / "MyDrive").mkdir(parents=True)
    content.mkdir()
    os.symlink(tmp_path / "synced", content / "drive")
    code, err = run("push", logs(tmp_path, **{"a.txt": b"a"}),
                    str(content / "drive" / "MyDrive" / "logs"))
    assert code == 0, err
    assert (tmp_path / "synced" / "MyDrive" / "logs" / "a.txt").read_bytes() == b"a"
