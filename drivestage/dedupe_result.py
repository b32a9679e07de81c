"""What :func:`drivestage.dedupe.dedupe` did (or, dry, would do): each merge, what stayed in a
newer folder and why, and the one-line summary; split from :mod:`drivestage.dedupe` (its
500-line cap)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class Conflict:
    """An item left in a duplicate: the oldest folder holds a different item of its name."""

    where: str        # the item, as the duplicate's path names it
    folder_id: str    # the duplicate it stays in
    into_id: str      # the oldest folder, which holds the other item of that name


@dataclass
class Merge:
    """A newer folder merged into the oldest, and what became of it: stdout said "merged"
    also of one that stayed (a conflict, an item Drive refused), which was not true."""

    where: str
    dup: str                       # the newer folder's id
    into: str                      # the oldest's
    #: What stayed in it, by kind ("conflict", "refused by Drive", "arrived meanwhile"),
    #: counted below it too (a nested duplicate that stays keeps this one).
    left: dict[str, int] = field(default_factory=dict)
    gone: bool = False             # trashed (dry run: would be), or gone meanwhile

    def line(self, dry_run: bool = False) -> str:
        """``merged: drive:a/b (id D) into the oldest (id I)``, or why it stays (unescaped)."""
        if self.gone:
            return f"{'to merge' if dry_run else 'merged'}: {self.where} (id {self.dup}) " \
                   f"into the oldest (id {self.into})"
        why = ", ".join(f"{n} {plural(n, k) if k == 'conflict' else k}"
                        for k, n in self.left.items())
        why = f"partly merged: {why} left in it" if why else \
            "emptied, but Drive refused trashing it"
        return f"{'would stay' if dry_run else 'stays'}: {self.where} (id {self.dup}) beside " \
               f"the oldest (id {self.into}), {why}"


@dataclass
class DedupeResult:
    """What :func:`dedupe` did (or, dry, would do)."""

    merged: list[Merge] = field(default_factory=list)
    moved: int = 0
    copies_trashed: int = 0
    #: Same-bytes copies also in another folder (a second parent kept from before 2020),
    #: taken out of the newer folder only: they stay in the other (parents39).
    copies_taken_out: int = 0
    #: Such copies taken out where they were in no other folder any more (another process
    #: took them out of it meanwhile): Drive placed them elsewhere, as their warning says.
    copies_placed: int = 0
    folders_trashed: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    #: Items a newer folder's last listing showed and its first did not (Drive's listing
    #: lagged, or a push added them meanwhile): that folder stays, with them.
    arrived: list[Conflict] = field(default_factory=list)
    #: Items (and newer folders) Drive refused this account to move or trash (someone
    #: else's, a shared drive's Contributor): they stay; the rest is merged all the same.
    refused: list[Conflict] = field(default_factory=list)
    #: Items Drive answered 404 for and a files.get confirmed gone (deleted or trashed by
    #: someone else while dedupe ran): skipped. The run used to stop at the first one.
    vanished: list[Conflict] = field(default_factory=list)
    #: Same-bytes copies also in a folder outside the newer one (a second parent kept from
    #: before 2020) that Drive refused taking out of the newer folder only: the trash would
    #: take them from there too, so they stay (attackout38).
    elsewhere: list[Conflict] = field(default_factory=list)
    dry_run: bool = False

    def _left(self) -> dict[str, int]:
        """What stays in newer folders so far, by kind (see :attr:`Merge.left`)."""
        return {"conflict": len(self.conflicts), "refused by Drive": len(self.refused),
                "arrived meanwhile": len(self.arrived),
                "also in another folder": len(self.elsewhere)}

    def summary(self) -> str:
        """One line: ``2 folders merged: 7 moved, 1 copy trashed, 2 empty folders trashed``
        (``1 folder merged, 1 stays: …`` when one stays, beside the oldest)."""
        if not self.merged:
            return "no same-named folders"
        would = "would be " if self.dry_run else ""
        parts = [f"{self.moved} {would}moved",
                 f"{self.copies_trashed} {plural(self.copies_trashed, 'copy', 'copies')} "
                 f"{would}trashed",
                 f"{self.folders_trashed} empty {plural(self.folders_trashed, 'folder')} "
                 f"{would}trashed"]
        if self.copies_taken_out:
            parts.append(f"{self.copies_taken_out} "
                         f"{plural(self.copies_taken_out, 'copy', 'copies')} {would}taken "
                         "out (also in another folder, where it stays)")
        if self.copies_placed:
            one = self.copies_placed == 1
            parts.append(f"{self.copies_placed} {plural(self.copies_placed, 'copy', 'copies')} "
                         f"taken out (no longer in {'its' if one else 'their'} other folder: "
                         f"Drive placed {'it' if one else 'them'} elsewhere, as said above)")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} {plural(len(self.conflicts), 'conflict')} "
                         "left in place")
        if self.refused:
            parts.append(f"{len(self.refused)} refused by Drive, left in place")
        if self.arrived:
            parts.append(f"{len(self.arrived)} arrived meanwhile, left in place")
        if self.elsewhere:
            parts.append(f"{len(self.elsewhere)} also in another folder, left in place")
        if self.vanished:
            parts.append(f"{len(self.vanished)} gone meanwhile")
        # Only folders that went count as merged: one that stays (a conflict, a refusal) was
        # counted too once, and the summary said "2 folders merged" with one still beside.
        went = sum(m.gone for m in self.merged)
        stay = len(self.merged) - went
        heads = [f"{went} {plural(went, 'folder')} {'to merge' if self.dry_run else 'merged'}"]
        if stay:
            verb = "would stay" if self.dry_run else plural(stay, "stays", "stay")
            heads = heads if went else []
            heads.append(f"{stay} {verb}" if went else
                         f"{stay} {plural(stay, 'folder')} {verb}")
        return ", ".join(heads) + ": " + ", ".join(parts)


def plural(n: int, one: str, many: Optional[str] = None) -> str:
    """``one``, or ``many`` (``one`` + s) where ``n`` is not 1."""
    return one if n == 1 else (many or one + "s")
