"""A file Drive lists without md5, verified by its SHA-256 (fidelity28), that changes on
Drive (attackds29): the pull's stamp kept only the md5 (null), so a new version of the same
size was taken for the staged copy ("already staged") and the old bytes stayed for good."""
from __future__ import annotations

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)


def _new_version(emulator, fid: str, tmp_path, data: bytes) -> None:
    """Another machine pushes new bytes into the file (same id); Drive, as for that file
    before, lists it without md5 (the server's choice: a lying or partial one)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(data)
    code, _, err = _cli.run("push", str(src), "drive:p")
    assert code == 0, err
    emulator.set_checksums(fid, md5=None, sha1=None)
    assert emulator.read_bytes(fid) == data


@pytest.mark.parametrize("what", ["drive:p/a.bin", "drive:p"])
def test_a_new_version_of_a_file_without_md5_is_pulled_again(emulator, env, tmp_path, what):
    fid = emulator.add_file("p/a.bin", b"x" * 5000)
    emulator.set_checksums(fid, md5=None, sha1=None)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", what, str(dest))
    assert code == 0, err
    target = dest / "a.bin" if what.endswith(".bin") else dest / "p" / "a.bin"
    assert target.read_bytes() == b"x" * 5000
    code, _, err = _cli.run("pull", what, str(dest))   # (unchanged: nothing fetched)
    assert code == 0 and "already staged" in err, err
    _new_version(emulator, fid, tmp_path, b"y" * 5000)

    code, _, err = _cli.run("pull", what, str(dest))

    assert code == 0, err
    assert target.read_bytes() == b"y" * 5000, err
    assert "sha256 verified" in err or "1 updated" in err or "1 downloaded" in err, err
