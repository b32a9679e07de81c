"""attack44: a run folder Drive will not mark (it holds as many properties as Drive allows,
100 in all: other tools' 30 PUBLIC and other apps' 70 PRIVATE). Its mark's refusal was a
PermissionDeniedError, which ``run_folders.mark`` takes as final: said once, never asked
again. Typed PropertyCountLimitError since leaselefts43, it read as an outage, and every push
(a mirror's, each period) asked Drive twice again (the PUBLIC mark, then the PRIVATE one),
to be refused twice. The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import logging


def test_a_folder_drive_will_not_mark_is_asked_once_per_process(emulator, store, env,
                                                                   drive_env, tmp_path,
                                                                   caplog):
    from drivestage.upload_tree import push

    folder = emulator.add_folder("runs/exp")
    emulator.set_properties(folder, [{"key": f"other-tool-{n}", "value": "x",
                                      "visibility": "PUBLIC"} for n in range(30)])
    for app, count in (("app-a", 30), ("app-b", 30), ("app-c", 10)):
        emulator.set_properties(folder, [{"key": f"{app}-{n}", "value": "x",
                                          "visibility": "PRIVATE"} for n in range(count)],
                                app=app)
    src = tmp_path / "src"
    src.mkdir()
    before = len(emulator.requests)
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        for n in range(3):
            (src / f"f{n}.txt").write_bytes(b"x" * (n + 1))
            push(str(src), "runs/exp", store=store, run_folder=True)
    asked = [r for r in emulator.requests[before:]
             if r.method == "POST" and r.path.endswith(f"/files/{folder}/properties")]
    assert len(asked) == 2, [r.path for r in asked]
    assert len([r for r in caplog.records if "could not mark" in r.getMessage()]) == 1
    assert sorted(f["title"] for f in emulator.files()
                  if not f["mimeType"].endswith(".folder")) == ["f0.txt", "f1.txt", "f2.txt"]
    assert len(emulator.properties_of(folder)) == 100
