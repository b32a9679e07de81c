"""mount52: the file systems whose files another machine rewrites, as the mount table names
them, count as network ones.

A stat there may answer from the client's cache (or a program's idea of an identity), so an
identity vouches for no md5 of an earlier process (:func:`drivestage.localfs.fuse_devices`),
and a folder refused to this user there may be the mount's doing, remembered as a stopped
mount's is (:func:`drivestage.mount_table.network`, mount51). ``NETWORK_FS`` lacked WSL1's
Windows drives (``drvfs``), the HPC cluster file systems (``beegfs``, ``gpfs``, ``panfs``) and
``coda``: there a rewrite by another node that kept size and mtime was taken for the file
hashed before, and a refusal for the owner's ``chmod``. Each line is as /proc/self/mountinfo
shows that mount (the types as the kernel names them: WSL1 ``C: /mnt/c drvfs``; a BeeGFS
client ``beegfs_nodev /mnt/beegfs beegfs``; GPFS ``gpfs0 /gpfs/project gpfs``)."""
from __future__ import annotations

import os

import pytest

#: type -> a mountinfo line of such a mount (device 0:77), and whether it failed on main.
LINES = {
    "drvfs": "38 27 0:77 / /mnt/c rw,noatime - drvfs C:\\134 rw,uid=1000,gid=1000,case=off",
    "beegfs": "39 27 0:77 / /mnt/beegfs rw,relatime - beegfs beegfs_nodev "
              "rw,cfgFile=/etc/beegfs/beegfs-client.conf",
    "gpfs": "40 27 0:77 / /gpfs/project rw,relatime - gpfs gpfs0 rw",
    "panfs": "41 27 0:77 / /panfs rw - panfs panfs://10.0.0.1:global rw",
    "coda": "42 27 0:77 / /mnt/dav rw - coda https://dav.example/dav rw",
    # (guards, counted on main too: davfs2 through FUSE is plain ``fuse``; WSL2's Windows
    # drives are 9p or virtiofs; Lustre was listed)
    "fuse": "43 27 0:77 / /mnt/dav rw,nosuid,nodev - fuse https://dav.example/dav "
            "rw,user_id=0,group_id=0,allow_other,max_read=16384",
    "9p": "44 27 0:77 / /mnt/c rw,noatime - 9p C:\\134 rw,aname=drvfs;path=C:\\;uid=1000",
    "virtiofs": "45 27 0:77 / /mnt/c rw - virtiofs drvfsC rw",
    "lustre": "46 27 0:77 / /lustre/scratch rw - lustre 10.0.0.1@o2ib:/scratch rw,flock",
}


@pytest.mark.parametrize("kind", sorted(LINES))
def test_a_mount_of_each_kind_vouches_for_no_identity(tmp_path, monkeypatch, kind):
    """Its device is among :func:`fuse_devices` (an identity there vouches for no md5), and
    the mount is a network one for the memory's refusal rule. On main 8704ac72 drvfs,
    beegfs, gpfs, panfs and coda failed both."""
    from drivestage import localfs, mount_table

    table = tmp_path / "mountinfo"
    table.write_text("22 27 0:21 / /proc rw,relatime - proc proc rw\n"
                     "27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n" + LINES[kind] + "\n")
    assert localfs.fuse_devices(str(table)) == {os.makedev(0, 77)}
    monkeypatch.setattr(localfs, "MOUNTINFO", str(table))
    point = LINES[kind].split(" ")[4]
    mount = mount_table.table()[point]
    assert mount.type == kind
    assert mount_table.network(mount)
    assert not mount_table.network(mount_table.table()["/"])
