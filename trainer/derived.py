"""What the trainer derives from the dataset, kept out of the dataset's own tree.

The annotation lines of a split (``<year>_<split>.txt``: this machine's absolute image
paths, written at every start) live in ``data.root/.drivestage-trainer/annotations/``, and
the ``drive:`` weights the trainer pulls in ``data.root/.drivestage-trainer/weights/``. That
name is one drivestage keeps for itself at any depth (:func:`drivestage.paths.is_reserved`):
no archive member and no Drive item can take it, and ``drivestage push`` leaves it out. So
no pull into ``data.root`` (or a folder above it) ever meets a file of the trainer's at a
member's path: it neither replaces one nor refuses over one, and the stamps and the tree
agree.

Older versions wrote the lines into the tree itself (``data.root/annotations/``, or
``annotations.local*/`` beside an archive's own). Since a pull refuses to replace a file no
extraction wrote (clobber32), such a file at a path that a new version of the archive brings
refused the next start. :func:`retire` removes those files before the pull when they hold
exactly what the trainer writes now and no stamp records them (an archive's member, or a
file pulled from Drive, is never touched; a folder that is a link is the user's); any other
is left as it is, and said so. The weights older versions pulled into
``data.root/weights/`` (refused over just so, when an archive brought ``weights/<name>``)
are moved with their stamps by :func:`move_old_weights`: no download again.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
from pathlib import Path
from typing import Callable, Collection, Iterator, Sequence

logger = logging.getLogger(__name__)

#: The trainer's folder in ``data.root`` (reserved by drivestage: see the module doc).
FOLDER = ".drivestage-trainer"
#: Where older versions wrote the lines: ``annotations``, then ``annotations.local``,
#: ``annotations.local2``, ... where a staged archive held the one before.
_OLD_FOLDER = re.compile(r"annotations(\.local\d*)?")

#: Where older versions pulled ``drive:`` weights (``model.weights``, eval's ``--weights``).
_OLD_WEIGHTS = "weights"

__all__ = ["FOLDER", "lines_folder", "old_lines", "retire", "weights_folder",
           "move_old_weights"]


def lines_folder(root: str, voc_root: str, names: Sequence[str]) -> Path:
    """The folder the trainer writes (and reads) the splits' annotation lines in: one for
    each VOCdevkit and class list, as a line's class numbers are the list's. Two runs of
    other classes on one data.root read each other's lines when they shared one (the
    second's write between the first's write and its read), training on its numbers without
    a word (attacknew33)."""
    key = "\0".join([os.path.realpath(voc_root), *names]).encode("utf-8", "surrogateescape")
    return Path(root) / FOLDER / "annotations" / hashlib.sha256(key).hexdigest()[:16]


def weights_folder(root: str) -> Path:
    """The folder ``drive:`` weights are pulled into (md5-verified, stamped by the pull)."""
    return Path(root) / FOLDER / "weights"


def move_old_weights(root: str, specs: Collection[str]) -> None:
    """The weights ``specs`` (``drive:…``) older versions pulled into ``root/weights/``
    moved into :func:`weights_folder` with their stamps (:func:`drivestage.move_staged`), so
    the pull there finds them staged: one metadata call, no download. Only drivestage's
    unchanged copies of those SRCs move: a file of the user's there stays, and so does one
    the user pulled of another SRC (a new version of the dataset's archive bringing its
    path is refused, and says so). Costs a stat where there is no such folder; never
    raises."""
    from drivestage import move_staged
    from drivestage.errors import DriveStageError

    old = os.path.join(root, _OLD_WEIGHTS)
    if not specs:
        return
    try:
        if not stat.S_ISDIR(os.lstat(old).st_mode):
            return   # (a file, or a link: the user's doing)
    except (FileNotFoundError, NotADirectoryError):
        return   # the usual case, and nothing to say: every start logged it as a failure
    except OSError as exc:
        logger.info("left %s as it is: %s", old, exc)
        return
    try:
        done = move_staged(old, str(weights_folder(root)), only=specs)
    except (OSError, DriveStageError) as exc:
        logger.info("left %s as it is: %s", old, exc)
        return
    for was, now in done.moved:
        logger.info("moved %s to %s: weights pulled from Drive are kept out of the "
                    "dataset's tree now", was, now)
    for was, now in done.copied:
        logger.info("copied %s to %s: it is a member of the dataset's archive too, which "
                    "stays", was, now)
    for was in done.dropped:
        logger.info("removed %s: the same weights, pulled from Drive, are in %s", was,
                    weights_folder(root))
    for was, why in done.left:
        logger.info("left %s as it is: %s", was, why)
    if _recorded(root, [_OLD_WEIGHTS]) == set():   # (an archive's folder stays)
        with contextlib.suppress(OSError):
            os.rmdir(old)   # only an empty one


def old_lines(root: str, names: Sequence[str]) -> list[Path]:
    """The files ``names`` (``2007_train.txt``) that older versions wrote into ``root``'s
    tree and that are there, as regular files of one name (a link, symbolic or hard, is not
    the trainer's doing)."""
    try:
        with os.scandir(root) as it:
            # Real folders only: the trainer made them; one that is a link is the user's (a
            # shared folder elsewhere), and its files were removed there (attacknew33).
            folders = sorted(e.name for e in it if _OLD_FOLDER.fullmatch(e.name)
                             and e.is_dir(follow_symlinks=False))
    except OSError:
        return []
    found = []
    for folder in folders:
        for name in names:
            path = Path(root) / folder / name
            try:
                st = os.lstat(path)
                # (One with another name too, a hard link, the user made: the trainer wrote
                # a new file each time. Its name here was removed: attacknew33.)
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    found.append(path)
            except OSError:
                continue
    return found


def retire(root: str, old: Sequence[Path], write: Callable[[str], Path]) -> None:
    """Remove the files ``old`` (of :func:`old_lines`) that hold exactly what ``write``
    (a split's name -> the file it wrote the lines of that split in, in
    :func:`lines_folder`) writes now, unless a stamp records their path: an archive's
    member. The folders they leave empty go too. Never raises: what it cannot tell it
    leaves, and the pull says what is in its way."""
    rels = [p.relative_to(root).as_posix() for p in old]
    held = _recorded(root, rels + sorted({r.split("/", 1)[0] for r in rels}))
    if held is None:
        return
    fresh: dict[str, Path | None] = {}
    emptied = set()
    for path, rel in zip(old, rels):
        if rel in held or _pulled(path):
            continue  # the archive's own (a data root zipped whole), or one pulled: not the
            # trainer's to remove
        name = path.name
        if name not in fresh:
            fresh[name] = _written(write, name)
        if fresh[name] is None:
            continue
        if _same_bytes(path, fresh[name]) is not None:  # type: ignore[arg-type]
            if _removed(root, path, rel, fresh[name]):  # type: ignore[arg-type]
                logger.info("removed %s: the trainer's annotation lines are in %s now, out of "
                            "the dataset's tree", path, fresh[name])
                emptied.add(path.parent)
        else:
            logger.info("left %s as it is: it is not what the trainer writes (edited, or "
                        "of other classes); its lines are in %s now", path, fresh[name])
    for folder in sorted(emptied):
        if folder.name not in held:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty one


def _written(write: Callable[[str], Path], name: str) -> Path | None:
    """The file ``write`` wrote the lines ``name`` into; None where it could not (the
    dataset incomplete before its pull: the start says so after the pull)."""
    from trainer.errors import DataError

    try:
        with _quiet():
            return write(name)
    except (DataError, OSError):
        return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """prepare-voc's warnings held back: the start writes the lines again after the pull,
    and says them then (once)."""
    voc = logging.getLogger("trainer.data.voc")
    level = voc.level
    voc.setLevel(logging.ERROR)
    try:
        yield
    finally:
        voc.setLevel(level)


def _same_bytes(a: Path, b: Path) -> "os.stat_result | None":
    """``a``'s status where it holds exactly ``b``'s bytes (read from one descriptor of
    ``a``, never through a link), else None."""
    try:
        fd = os.open(a, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        with open(fd, "rb", closefd=False) as fh:
            st = os.fstat(fd)
            same = stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and \
                st.st_size == b.stat().st_size and \
                fh.read() == b.read_bytes()
        return st if same else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _removed(root: str, path: Path, rel: str, fresh: Path) -> bool:
    """Remove ``path`` (``rel`` in ``root``) if it still is a file of exactly ``fresh``'s
    bytes that no stamp records, under ``root``'s merge lock where pulls go there. Asked
    again at the removal: the lines to compare with take a second or more to make, and
    another start's pull of a new version bringing that path with those bytes (a data root
    zipped whole on a machine like this) adopted the file as its member meanwhile, which
    was then removed, its stamp saying it is there (attacknew33)."""
    with _merging(root):
        again = _recorded(root, [rel])
        st = _same_bytes(path, fresh)
        if again is None or again or _pulled(path) or st is None:
            return False
        try:
            now = os.lstat(path)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                return False   # (replaced since it was read: whatever it is now stays)
            path.unlink()
        except OSError:
            return False
    return True


def _pulled(path: Path) -> bool:
    """Whether a stamp says ``path`` is a file downloaded from Drive (``drivestage pull
    drive:…/2007_train.txt data/annotations``: the user's copy of their file on Drive, made
    on a machine with the same paths, as every Colab VM has), or cannot be read (a doubt
    leaves it). Such a file was removed at every start, and pulled again (attacknew33)."""
    from drivestage import stamps
    from drivestage.errors import DriveStageError

    try:
        return bool(stamps.of(str(path.parent), path.name))
    except (OSError, DriveStageError):
        return True


@contextlib.contextmanager
def _merging(root: str) -> Iterator[None]:
    """Hold ``root``'s merge lock (every extraction into it holds it to check its members
    against the tree and move them in) where a pull made its state folder there; else
    nothing (none is made for this)."""
    from drivestage.errors import DriveStageError
    from drivestage.extract.merging import merge_lock
    from drivestage.paths import STATE_DIR

    state = os.path.join(root, STATE_DIR)
    with contextlib.ExitStack() as held:
        if os.path.isdir(state) and not os.path.islink(state):
            with contextlib.suppress(OSError, DriveStageError):  # (the stamps are read again)
                held.enter_context(merge_lock(root))
        yield


def _recorded(root: str, rels: list[str]) -> set[str] | None:
    """Of ``rels`` (relative to ``root``), those a stamp records, seen from ``root`` and
    from its target where it is a link (``ln -s /content/datasets/data /content/data``:
    the pull's stamp is above the target); None where the stamps cannot be read."""
    from drivestage import stamps
    from drivestage.errors import DriveStageError

    here, real = os.path.abspath(root), os.path.realpath(root)
    try:
        out = stamps.recorded(here, rels)
        return out | stamps.recorded(real, rels) if real != here else out
    except (OSError, DriveStageError):
        return None
