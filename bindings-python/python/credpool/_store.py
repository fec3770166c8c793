"""``StorePool``: :class:`~credpool.CredentialPool` over a :class:`~credpool.FileStore`.

Identical to ``CredentialPool`` (``call``, leases as context managers; every input of the
call driver persisted by the store), except that a ``refresh`` action is performed through
``FileStore.refresh``: single-flight across every process sharing the store (a file, or
Redis), so a rotated single-use refresh token is never replayed. The store records the
refresh on the call's lease and ``call_resume`` follows it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from credpool._credpool import FileStore
from credpool._helpers import Action, Clock, CredentialPool, Decision, RefreshFn, _Call

__all__ = ["StorePool"]


class StorePool(CredentialPool):
    """A :class:`~credpool.FileStore` bound to one pool (see ``FileStore.pool``).

    ``refresh`` gets the :class:`~credpool.Lease` to refresh (its ``refresh_token``
    included) and runs while the store's lock is held (the file lock, or the entry's
    Redis refresh lock, confirmed right before the call); it is only called when no other
    process has rotated the token already (then the rotated token is adopted).
    """

    registry: Any  # a FileStore (CredentialPool only uses the methods both share)

    def __init__(
        self,
        store: FileStore,
        pool: str,
        *,
        refresh: Optional[RefreshFn] = None,
        clock: Optional[Clock] = None,
    ) -> None:
        super().__init__(store, pool, refresh=refresh, clock=clock)  # type: ignore[arg-type]

    @property
    def store(self) -> FileStore:
        """The store this pool lives in."""
        return self.registry  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"StorePool({self.name!r}, location={self.store.location!r})"

    def _refresh(self, call: _Call, action: Action) -> Decision:
        """Single-flight refresh through ``FileStore.refresh`` (adopts a token another process
        rotated; the store abandons the refresh if ``refresh`` raises); then ``call_resume``."""
        refresh = call.refresher(action)

        def refresh_fn(credential: Mapping[str, Any]) -> Mapping[str, Any]:
            return refresh(call.target(action, credential))

        self.store.refresh(
            action["pool"], action["entry_id"], action["generation"], refresh_fn,
            lease_id=action["lease_id"], now=self._now(),
        )  # fmt: skip
        return call.resume()
