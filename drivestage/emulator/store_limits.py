"""Drive's storage quota and item limits in the emulator's store (:class:`StoreLimits`, a
mixin of :class:`~drivestage.emulator.store.EmulatorStore`; split from store.py at its line
cap): the bytes the account uses, whether an upload fits the quota, and how many items a
folder, a shared drive or an account may hold and how deep folders nest.
"""
from __future__ import annotations

from typing import Optional

from drivestage.emulator.errors import EmulatorApiError, drive_error

#: Drive's limits (Google's "Resolve errors" guide and shared-drive limits help page).
MAX_FOLDER_CHILDREN = 500_000
MAX_SHARED_DRIVE_ITEMS = 500_000
#: Folders nest at most this deep in a shared drive (403 teamDriveHierarchyTooDeep) and, since
#: November 2023 (the Drive API release notes), in My Drive (403
#: myDriveHierarchyDepthLimitExceeded).
MAX_SHARED_DRIVE_DEPTH = MAX_MY_DRIVE_DEPTH = 100
#: Items one account may have created, wherever they are (January 2024, the release notes;
#: 403 activeItemCreationLimitExceeded); ``set_item_creation_limit`` lowers it for tests.
MAX_ITEMS_CREATED = 500_000_000


def quota_exceeded() -> EmulatorApiError:
    """Drive's 403 when an upload does not fit into the storage quota."""
    return drive_error("storageQuotaExceeded")


class StoreLimits:
    """The quota and item limits of :class:`~drivestage.emulator.store.EmulatorStore`."""

    def usage(self) -> tuple[int, int]:
        """(bytes used, bytes used in trash) by the caller's own files in My Drive.

        Trashed files count until deleted, and so do the old revisions Drive keeps."""
        used = trash = 0
        with self.lock:
            for r in self.files.values():
                if r.get("driveId") is not None or r.get("owner") is not None:
                    continue
                size = (r["size"] or 0) + sum(v["size"] for v in r.get("revisions", ()))
                used += size
                if r["trashed"]:
                    trash += size
        return used, trash

    def check_quota(self, extra: int, drive_id: Optional[str], *, replacing: int = 0) -> None:
        """403 storageQuotaExceeded when ``extra`` more bytes do not fit (shared drives are
        unlimited); what Gmail and Photos use counts too (:attr:`other_usage`)."""
        if self.quota_bytes is None or drive_id is not None:
            return
        used, _ = self.usage()
        if used + sum(self.other_usage.values()) - replacing + extra > self.quota_bytes:
            raise quota_exceeded()

    def check_not_full(self, drive_id: Optional[str]) -> None:
        """403 storageQuotaExceeded where the account's storage is full (not a byte of
        :attr:`quota_bytes` free; shared drives are unlimited): a write that takes no
        storage, as :attr:`Emulator.full_refuses_property_writes` makes it refused."""
        if self.quota_bytes is None or drive_id is not None:
            return
        used, _ = self.usage()
        if used + sum(self.other_usage.values()) >= self.quota_bytes:
            raise quota_exceeded()

    def check_room(self, parent_ids: list[str], drive_id: Optional[str], *,
                   folder: bool = False) -> None:
        """Drive's item limits for one new item: children of a (non-root) folder, items of a
        shared drive (trashed items count, as on Drive), for a ``folder`` the depth folders
        nest to there (in a shared drive or My Drive), and the items this account created
        (when :attr:`item_creation_limit` is set: Drive's 500 million cannot be reached)."""
        with self.lock:
            if folder:
                for p in parent_ids:
                    if drive_id is not None and self._depth(p) + 1 > MAX_SHARED_DRIVE_DEPTH:
                        raise drive_error("teamDriveHierarchyTooDeep")
                    if drive_id is None and self._depth(p) + 1 > MAX_MY_DRIVE_DEPTH:
                        raise drive_error("myDriveHierarchyDepthLimitExceeded")
            if self.item_creation_limit is not None and self.item_creation_limit <= sum(
                    1 for r in self.files.values()
                    if r.get("owner") is None and not self.is_container_root(r["id"])):
                raise drive_error("activeItemCreationLimitExceeded")
            for p in parent_ids:
                if self.is_container_root(p):
                    continue
                limit = self.files[p].get("child_limit") or MAX_FOLDER_CHILDREN
                if len(self._by_parent.get(p, ())) >= limit:
                    raise drive_error("numChildrenInNonRootLimitExceeded")
            if drive_id is not None and drive_id in self.drives:
                limit = self.drives[drive_id].get("item_limit") or MAX_SHARED_DRIVE_ITEMS
                if sum(1 for r in self.files.values() if r.get("driveId") == drive_id) >= limit:
                    raise drive_error("teamDriveFileLimitExceeded")

    def _depth(self, folder_id: str) -> int:
        """Folders from the top of its drive down to ``folder_id`` (its root: 0)."""
        depth, cur, seen = 0, folder_id, set()
        while not self.is_container_root(cur) and cur in self.files and cur not in seen:
            seen.add(cur)
            parents = self.files[cur].get("parents") or []
            if not parents:
                break
            cur, depth = parents[0], depth + 1
        return depth
