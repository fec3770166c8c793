"""``StorePool``: :class:`~credpool.CredentialPool` over a :class:`~credpool.FileStore`.

Identical to ``CredentialPool`` (leases as context managers, ``call``), except that a
``refresh`` decision is followed through ``FileStore.refresh``: single-flight across
every process sharing the store (a file, or Redis), so a rotated single-use refresh
token is never replayed.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from credpool._credpool import FileStore
from credpool._helpers import MAX_HOPS, Clock, CredentialPool, Decision, Lease, RefreshFn

__all__ = ["StorePool"]


class StorePool(CredentialPool):
    """A :class:`~credpool.FileStore` bound to one pool (see ``FileStore.pool``).

    ``refresh`` gets the :class:`~credpool.Lease` to refresh (its ``refresh_token``
    included) and runs while the store's lock is held (the file lock, or the entry's
    Redis refresh lock, confirmed right before the call); it is only called when no other
    process has rotated the token already.
    """

    registry: Any  # a FileStore (CredentialPool only uses the methods both share)

    def __init__(
        self,
        store: FileStore,
        pool: str,
        *,
        refresh: Optional[RefreshFn] = None,
        clock: Optional[Clock] = None,
        max_hops: int = MAX_HOPS,
    ) -> None:
        super().__init__(store, pool, refresh=refresh, clock=clock, max_hops=max_hops)  # type: ignore[arg-type]

    @property
    def store(self) -> FileStore:
        """The store this pool lives in."""
        return self.registry  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"StorePool({self.name!r}, location={self.store.location!r})"

    def _on(self, pool: str) -> StorePool:
        if pool == self.name:
            return self
        return StorePool(self.store, pool, refresh=self.refresh, clock=self.clock, max_hops=self.max_hops)

    def _refresh(self, decision: Decision, model: Optional[str], session: Optional[str]) -> Decision:
        """Single-flight refresh through ``FileStore.refresh``; returns core's answer."""
        assert self.refresh is not None
        refresh = self.refresh
        entry_id, lease_id = decision["entry_id"], decision["lease_id"]

        def refresh_fn(credential: Mapping[str, Any]) -> Mapping[str, Any]:
            return refresh(Lease(self, model, session, decision, dict(credential)))

        try:
            return self.store.refresh(
                self.name, entry_id, decision["generation"], refresh_fn, lease_id=lease_id, now=self._now()
            )
        except BaseException:
            self._release_quietly(lease_id)
            raise
