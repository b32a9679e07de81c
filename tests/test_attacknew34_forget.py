"""attacknew34: ``runs forget /nas/runs/exp1``, a local run folder marked by its file
``.drivestage/run-folder`` (nasmark34), said "its mark on Drive cleared": a Drive it never
asked. It names the file it removed now."""
from __future__ import annotations

from drivestage.local_marks import marked, put

from _cli import run


def test_runs_forget_of_a_local_run_folder_names_the_file_it_removed(local_state, tmp_path):
    exp1 = tmp_path / "nas" / "runs" / "exp1"
    exp1.mkdir(parents=True)
    (exp1 / "epoch_001.pt").write_bytes(b"x" * 10)
    assert put(str(exp1), True)

    code, out, err = run("runs", "forget", str(exp1))

    assert (code, err) == (0, "")
    assert out == f"{exp1} is no run folder any more: its mark (.drivestage/run-folder) removed\n"
    assert not marked(str(exp1))
    assert (exp1 / "epoch_001.pt").read_bytes() == b"x" * 10
