"""Two pushes into one Drive folder, named two ways (its path, and `drive:id:<ID>`), at once
on one machine. The lock that makes two pushes into one place wait for each other was keyed
on how DEST was written, so neither waited: the second push, run whole while the first was
about to send its files, made them too, and the first then made them again: every new file
twice (attacky25; the generated ids do not help, the second push forgets its ids once its
files are verified). Once DEST is found, a push now also holds the lock of the folder."""
from __future__ import annotations

from drivestage.upload_tree import push

from _at_once import second_at_the_ids
from _proxy import Proxy
from test_push_safety import _md5, _no_duplicates, _run_tree, _tree_of


def test_a_push_by_id_into_a_folder_a_push_by_path_is_writing_waits_for_it(
        emulator, drive_env, local_state):
    from drivestage.drive import connect

    src = local_state / "logs"
    files = _run_tree(src)
    folder_id = emulator.add_folder("Models/logs")
    with Proxy(emulator.url) as proxy:   # (both pushes go through it: one API root)
        def second() -> None:
            push(str(src), f"id:{folder_id}", store=connect(api_root=proxy.url,
                                                            token="test-token"))

        with second_at_the_ids(proxy, second):
            push(str(src), "Models/logs", store=connect(api_root=proxy.url, token="test-token"),
                 jobs=1)
    assert _no_duplicates(emulator) == {}
    assert _tree_of(emulator) == {k: _md5(v) for k, v in files.items()}
