"""tests/_rewrite_ahead.py: the xdist controller caches each test module's assertion rewrite
once, as pytest itself would, so that the workers read it instead of each rewriting it."""
from __future__ import annotations

import sys

from _pytest.assertion import rewrite

from _rewrite_ahead import _pyc, rewrite_ahead

_MODULE = "def f():\n    return 1\n\n\ndef test_f():\n    assert f() == {}\n"


def _run(co) -> str:
    """What the module's test says when it fails (its assert's explanation)."""
    space: dict = {}
    exec(co, space)
    try:
        space["test_f"]()
    except AssertionError as exc:
        return str(exc)
    return "passed"


def test_a_module_is_rewritten_once_as_pytest_would_and_again_once_changed(
        request, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    (tmp_path / "sub").mkdir()
    files = [tmp_path / "test_one.py", tmp_path / "sub" / "test_two.py"]
    for fn in files:
        fn.write_text(_MODULE.format(2))
    (tmp_path / "helper.py").write_text("x = 1\n")   # (not a test module: left alone)

    # Two processes: the second file's rewrite is written by a forked child.
    assert rewrite_ahead(request.config, 2, [str(tmp_path)]) == 2
    for fn in files:
        co = rewrite._read_pyc(fn, _pyc(fn))
        assert co is not None, fn   # pytest takes it as its own cache, up to date
        # The asserts were rewritten: the failure explains its operands.
        said = _run(co)
        assert said.startswith("assert 1 == 2\n +  where 1 = "), said
    assert not (tmp_path / "__pycache__" / f"helper.{rewrite.PYC_TAIL[1:]}").exists()
    assert rewrite_ahead(request.config, 2, [str(tmp_path)]) == 0   # up to date: nothing

    files[1].write_text(_MODULE.format(1))
    assert rewrite_ahead(request.config, 1, [str(files[1])]) == 1
    assert _run(rewrite._read_pyc(files[1], _pyc(files[1]))) == "passed"


def test_nothing_is_written_where_bytecode_is_not(request, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / "test_one.py").write_text(_MODULE.format(2))
    assert rewrite_ahead(request.config, 2, [str(tmp_path)]) == 0
    assert not (tmp_path / "__pycache__").exists()
