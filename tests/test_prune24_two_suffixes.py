"""prune24: one sidecar for two checkpoint names (``epoch_001.json`` is the sidecar name of
both ``epoch_001.pt`` and ``epoch_001.pth``). The rule: a sidecar belongs to one checkpoint
name, the one whose bytes it vouches for (its md5); only when it vouches for neither does it
stay while either name is kept. It stayed while either was kept: the plan deleted
epoch_001.pt, the checkpoint it vouched for, and kept its sidecar beside epoch_001.pth,
whose bytes it does not describe (an epoch and metrics about bytes no longer there)."""
from __future__ import annotations

import os

from _checkpoints import md5, sidecar_json
from _envs import env  # noqa: F401  (a fixture)
from test_prune24_room import FOLDER, _live


def _prune(emulator, vouched: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """epoch_001.pt and epoch_001.pth, one sidecar vouching for ``vouched``, epoch 2 newest;
    ``--keep-last 1`` with epoch_001.pth protected (the plan splits the two names)."""
    from drivestage.drive import connect
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy

    data = {n: os.urandom(900) for n in ("epoch_001.pt", "epoch_001.pth", "epoch_002.pt")}
    for name, d in data.items():
        emulator.add_file(f"{FOLDER}/{name}", d)
    data["epoch_001.json"] = sidecar_json(1, data[vouched])
    data["epoch_002.json"] = sidecar_json(2, data["epoch_002.pt"])
    for name in ("epoch_001.json", "epoch_002.json"):
        emulator.add_file(f"{FOLDER}/{name}", data[name])
    decided = prune(FOLDER, RetentionPolicy(keep_last=1), protect=["epoch_001.pth"],
                    store=connect(api_root=emulator.url, token="test-token"))
    return data, {d.name: d.reason for d in decided if d.keep}


def test_the_sidecar_of_the_pruned_name_goes_with_it_beside_the_other_name(emulator, env):
    data, kept = _prune(emulator, "epoch_001.pt")
    assert "epoch_001.json" not in kept
    assert _live(emulator) == {n: md5(data[n]) for n in
                               ("epoch_001.pth", "epoch_002.pt", "epoch_002.json")}


def test_the_sidecar_of_the_kept_name_stays(emulator, env):
    data, kept = _prune(emulator, "epoch_001.pth")
    assert kept["epoch_001.json"] == "sidecar of epoch_001.pth"
    assert _live(emulator) == {n: md5(data[n]) for n in
                               ("epoch_001.pth", "epoch_001.json", "epoch_002.pt",
                                "epoch_002.json")}
