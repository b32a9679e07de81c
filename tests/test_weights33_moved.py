"""weights33: ``model.weights: drive:…`` (and eval's ``--weights``) were pulled into
``data.root/weights/``, inside the dataset's tree. Since a pull refuses to replace a file no
extraction wrote (clobber32), a new version of ``data.drive_zip`` bringing
``weights/<name>`` with other bytes refused the next start (``… would replace 1 file …
--force``). The weights now land in the trainer's own folder,
``data.root/.drivestage-trainer/weights/`` (a name no member and no Drive item can take).
A copy an older version pulled is moved there with its stamp
(:func:`drivestage.move_staged`): the pull finds it staged, one metadata call, no download.
A file of the user's in ``weights/`` is never moved."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import drivestage
from test_trainfiles33_derived import _SETTINGS, _replace_on_drive, _zip

SPEC = "drive:Models/pre/w.pth"
#: Where the trainer pulls drive: weights now (trainer.derived.weights_folder), spelt out.
NEW = Path(".drivestage-trainer") / "weights"


def _weights(emulator) -> tuple[bytes, str]:
    """The weights' bytes on Drive, and their id."""
    data = os.urandom(20_000)
    return data, emulator.add_file("Models/pre/w.pth", data)


def _downloads(emulator, fid: str) -> int:
    """The requests for the bytes of ``fid`` in the emulator's log."""
    return sum(1 for r in emulator.requests
               if r.kind == "media.download" and r.path.endswith("/" + fid))


def _config(tiny_config, **more):
    from trainer.config import load_config

    return load_config(tiny_config(**{"model.weights": SPEC, **more}))


def _old_trainers_pull(cfg) -> Path:
    """What the trainer did before weights33: the pull into ``data.root/weights``."""
    folder = Path(cfg.data.root) / "weights"
    drivestage.pull(SPEC, str(folder), quiet=True, folders=False)
    return folder / "w.pth"


def test_a_fresh_start_pulls_the_weights_into_the_trainers_folder(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    from trainer.staging import local_weights

    data, fid = _weights(emulator)
    cfg = _config(tiny_config)

    path = local_weights(cfg.model.weights, cfg)

    root = tmp_path / "data"
    assert path == str(root / NEW / "w.pth")
    assert Path(path).read_bytes() == data
    assert sorted(os.listdir(root)) == [".drivestage-trainer"]   # nothing in the tree


def test_weights_an_older_version_pulled_are_moved_not_downloaded_again(
        emulator, local_state, drive_env, tiny_config, tmp_path, caplog):
    """The old layout: the stamped copy moves (zero downloads, one metadata call); the
    user's own file beside it stays. Before: downloaded again, the old copy left."""
    import logging

    from trainer.staging import local_weights

    data, fid = _weights(emulator)
    cfg = _config(tiny_config)
    old = _old_trainers_pull(cfg)
    mine = old.parent / "mine.pth"
    mine.write_bytes(b"my own weights")
    emulator.add_file("Models/pre/other.pth", b"pulled by hand")   # another SRC: the user's
    drivestage.pull("drive:Models/pre/other.pth", str(old.parent), quiet=True)
    emulator.clear_requests()

    with caplog.at_level(logging.INFO, logger="trainer"):
        path = local_weights(cfg.model.weights, cfg)

    root = tmp_path / "data"
    assert path == str(root / NEW / "w.pth")
    assert Path(path).read_bytes() == data
    assert _downloads(emulator, fid) == 0
    assert len(emulator.requests) == 1          # the stamp's id re-checked: one files.get
    assert not old.exists()
    assert sorted(os.listdir(old.parent)) == [".drivestage", "mine.pth", "other.pth"]
    assert [s.name.split("@")[0] for s in (old.parent / ".drivestage").iterdir()] == \
        ["other.pth"]                                # w.pth's stamp went with it
    assert mine.read_bytes() == b"my own weights"
    assert f"moved {old} to {path}: weights pulled from Drive are kept out of the " \
        "dataset's tree now" in caplog.text
    emulator.clear_requests()

    assert local_weights(cfg.model.weights, cfg) == path   # a rerun: staged there
    assert len(emulator.requests) == 1


def test_an_old_copy_that_changed_since_its_pull_is_left(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """Its stamp names it, but its bytes are not those staged (same size, mtime put back:
    the user's, by any test drivestage has): never moved, never removed."""
    from trainer.staging import local_weights

    data, fid = _weights(emulator)
    cfg = _config(tiny_config)
    old = _old_trainers_pull(cfg)
    st = old.stat()
    edited = bytes(len(data))
    old.write_bytes(edited)
    os.utime(old, ns=(st.st_atime_ns, st.st_mtime_ns))
    emulator.clear_requests()

    path = local_weights(cfg.model.weights, cfg)

    assert Path(path).read_bytes() == data           # pulled from Drive, into the new place
    assert old.read_bytes() == edited
    assert _downloads(emulator, fid) == 1        # into the new place


@pytest.mark.parametrize("key", ["model.weights", "--weights"])
def test_a_new_dataset_version_bringing_weights_name_no_longer_blocks_the_start(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path, key):
    """The old layout (the dataset and the weights pulled by an older version), then v2 of
    the dataset's zip adds ``weights/w.pth`` of other bytes. Before: ``data.drive_zip:
    VOC.zip would replace 1 file in …/data that is not from an extraction …: …/weights/w.pth
    …``; now v2 stages, and the weights come from the trainer's folder, not downloaded.
    ``--weights``: eval's, which stages the data with them (``model.weights`` unset)."""
    from trainer.staging import local_weights, stage_data

    data, fid = _weights(emulator)
    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config, **_SETTINGS, **({"model.weights": None}
                                                if key == "--weights" else {}))
    drivestage.pull(cfg.data.drive_zip, cfg.data.root, extract=True, quiet=True)
    _old_trainers_pull(cfg)
    _replace_on_drive("VOC_datasets/VOC.zip",
                      _zip(synth_voc, {"weights/w.pth": b"the dataset's own"}), tmp_path)
    emulator.clear_requests()

    if key == "--weights":      # as `trainer eval -w drive:… ` does
        stage_data(cfg, weights=(SPEC,))
    else:
        stage_data(cfg)
    path = local_weights(SPEC, cfg, key)

    root = tmp_path / "data"
    assert (root / "weights" / "w.pth").read_bytes() == b"the dataset's own"   # v2's member
    assert Path(path).read_bytes() == data
    assert emulator.api_calls("media.download") > 0          # VOC.zip v2's
    assert _downloads(emulator, fid) == 0                     # the weights': none


def test_weights_an_archive_holds_too_are_copied_and_the_member_stays(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """The dataset's zip holds ``weights/w.pth`` with Drive's bytes (a data root zipped
    whole); an older version's pull found that member staged. The member stays the
    archive's (moved, the next pull downloaded the archive again to put it back); the
    weights are copied: no download either way."""
    from trainer.staging import local_weights, stage_data

    data, fid = _weights(emulator)
    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {"weights/w.pth": data}))
    cfg = _config(tiny_config, **{**_SETTINGS, "data.keep_archive": False})
    drivestage.pull(cfg.data.drive_zip, cfg.data.root, extract=True, quiet=True,
                    remove_archive=True)
    old = _old_trainers_pull(cfg)
    emulator.clear_requests()

    stage_data(cfg)
    path = local_weights(cfg.model.weights, cfg)
    stage_data(cfg)

    assert path == str(tmp_path / "data" / NEW / "w.pth")
    assert old.read_bytes() == Path(path).read_bytes() == data
    assert emulator.api_calls("media.download") == 0
    assert not (old.parent / ".drivestage").exists()


def test_an_old_copy_beside_the_same_weights_in_the_trainers_folder_goes(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """An older version run again after a newer one pulled the weights into ``weights/``
    once more: that stamped copy of the same bytes is a duplicate, removed (else it stayed
    in the dataset's tree for good); nothing is downloaded."""
    from trainer.staging import local_weights

    data, fid = _weights(emulator)
    cfg = _config(tiny_config)
    path = local_weights(cfg.model.weights, cfg)
    _old_trainers_pull(cfg)
    emulator.clear_requests()

    assert local_weights(cfg.model.weights, cfg) == path

    assert Path(path).read_bytes() == data
    assert not (tmp_path / "data" / "weights").exists()
    assert len(emulator.requests) == 1


def test_eval_of_drive_weights_with_an_old_layout_and_a_new_dataset_version(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """``trainer eval -w drive:…`` with the old layout and v2 of the dataset's zip adding
    ``weights/best.pt`` of other bytes: scored, the copy moved first (eval stages the data
    before it pulls its weights). Before: refused, exit 1, naming …/weights/best.pt."""
    import torch
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.model import YoloV4Tiny

    spec = "drive:Models/demo/logs/best.pt"
    names = ["circle", "square", "triangle"]
    torch.save({"model": YoloV4Tiny(3, input_size=64, width=0.25).state_dict(),
                "class_names": names, "config": {"model": {"input_size": 64, "width": 0.25}}},
               tmp_path / "best.pt")
    fid = emulator.add_file("Models/demo/logs/best.pt", str(tmp_path / "best.pt"))
    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    config = tiny_config(**_SETTINGS, **{"data.max_val_images": 2, "train.conf_thresh": 0.9})
    root = tmp_path / "data"
    drivestage.pull("drive:VOC_datasets/VOC.zip", str(root), extract=True, quiet=True)
    drivestage.pull(spec, str(root / "weights"), quiet=True)     # the older version's
    _replace_on_drive("VOC_datasets/VOC.zip",
                      _zip(synth_voc, {"weights/best.pt": b"the dataset's own"}), tmp_path)
    emulator.clear_requests()

    r = CliRunner().invoke(cli, ["eval", "-c", config, "-w", spec, "--json"])

    assert r.exit_code == 0, r.output
    assert (root / "weights" / "best.pt").read_bytes() == b"the dataset's own"
    assert (root / NEW / "best.pt").read_bytes() == (tmp_path / "best.pt").read_bytes()
    assert _downloads(emulator, fid) == 0


def test_weights_drive_lists_without_an_md5_move_by_their_sha256(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """A file Drive lists without ``md5Checksum`` (stored long ago) was staged verified by
    its SHA-256, which its stamp keeps: that is what the move checks."""
    from trainer.staging import local_weights

    data, fid = _weights(emulator)
    emulator.set_checksums(fid, md5=None)
    cfg = _config(tiny_config)
    old = _old_trainers_pull(cfg)
    emulator.clear_requests()

    path = local_weights(cfg.model.weights, cfg)

    assert Path(path).read_bytes() == data and not old.exists()
    assert _downloads(emulator, fid) == 0


def test_a_member_seen_through_a_linked_data_root_is_copied_not_moved(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """``data.root`` a link into a folder a pull extracted (attacktr31b's layout): the
    archive's stamp is above the link's target. Its ``data/weights/w.pth``, which an older
    version's pull found staged, stays the archive's: copied."""
    from _archives import a_fixed_zip
    from trainer.staging import local_weights

    data, fid = _weights(emulator)
    emulator.add_file("d/all.zip", a_fixed_zip({"data/weights/w.pth": data}))
    drivestage.pull("drive:d/all.zip", str(tmp_path / "datasets"), extract=True, quiet=True)
    os.symlink(tmp_path / "datasets" / "data", tmp_path / "data")
    cfg = _config(tiny_config)
    old = _old_trainers_pull(cfg)
    emulator.clear_requests()

    path = local_weights(cfg.model.weights, cfg)

    assert old.read_bytes() == Path(path).read_bytes() == data
    assert _downloads(emulator, fid) == 0


def test_a_weights_folder_an_archive_made_stays_once_emptied(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """The dataset's zip has an empty ``weights/`` folder, where an older version pulled
    the weights: they move, the archive's folder stays (gone, the next pull put it back,
    downloading the archive again where it was removed)."""
    from trainer.staging import local_weights, stage_data

    data, fid = _weights(emulator)
    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {"weights/": b""}))
    cfg = _config(tiny_config, **{**_SETTINGS, "data.keep_archive": False})
    drivestage.pull(cfg.data.drive_zip, cfg.data.root, extract=True, quiet=True,
                    remove_archive=True)
    old = _old_trainers_pull(cfg)
    emulator.clear_requests()

    path = local_weights(cfg.model.weights, cfg)
    stage_data(cfg)

    assert Path(path).read_bytes() == data and not old.exists()
    assert os.listdir(old.parent) == []
    assert emulator.api_calls("media.download") == 0
