"""``StorePool``: :class:`~credpool.CredentialPool` over a :class:`~credpool.Store`.

Identical to ``CredentialPool`` (``call``, leases as context managers; every input of the
call driver persisted by the store), except that a ``refresh`` action is performed through
``Store.refresh``: single-flight across every process sharing the store (an SQLite
database, or Redis), so a rotated single-use refresh token is never replayed. The store
records the refresh on the call's lease and ``call_resume`` follows it.

``AsyncStore``: a ``Store`` for asyncio. Its methods are coroutines that run the store's
blocking work (lock waits, database and Redis IO; the native methods release the GIL) on
one worker thread of the store's, so the event loop never waits on another process's lock.
The async helpers of a ``StorePool`` (``acall``, ``alease``, the async transport) do the same.
``credpool.AsyncFileStore`` is its deprecated alias, kept for one release.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Mapping, Optional, Union

from credpool._credpool import Store
from credpool._helpers import Action, Clock, CredentialPool, Decision, ProbeFn, RefreshFn, _as_is, _Call, _on_loop

__all__ = ["AsyncStore", "StorePool"]


def _worker() -> Executor:
    """The thread a store's blocking calls run on off the event loop. One is enough: a
    ``Store`` serialises its users, so more threads would only wait on it."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="credpool-store")


class StorePool(CredentialPool):
    """A :class:`~credpool.Store` bound to one pool (see ``Store.pool``).

    ``refresh`` gets the :class:`~credpool.Lease` to refresh (its ``refresh_token``
    included) and runs while the store's refresh lock is held (the database's, or the
    entry's Redis refresh lock, confirmed right before the call); it is only called when no
    other process has rotated the token already (then the rotated token is adopted).
    """

    registry: Any  # a Store (CredentialPool only uses the methods both share)
    _blocking = True

    def __init__(
        self,
        store: Store,
        pool: str,
        *,
        refresh: Optional[RefreshFn] = None,
        clock: Optional[Clock] = None,
        executor: Optional[Executor] = None,
        probe: Optional[ProbeFn] = None,
    ) -> None:
        super().__init__(store, pool, refresh=refresh, clock=clock, probe=probe)  # type: ignore[arg-type]
        self._worker = executor

    def _executor(self) -> Executor:
        if self._worker is None:
            self._worker = _worker()
        return self._worker

    @property
    def store(self) -> Store:
        """The store this pool lives in."""
        return self.registry  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"StorePool({self.name!r}, location={self.store.location!r})"

    def _refresh(self, call: _Call, action: Action, resolve: Callable[[Any], Any] = _as_is) -> Decision:
        """Single-flight refresh through ``Store.refresh`` (adopts a token another process
        rotated; the store abandons the refresh if ``refresh`` raises); then ``call_resume``."""
        refresh = call.refresher(action)

        def refresh_fn(credential: Mapping[str, Any]) -> Mapping[str, Any]:
            return resolve(refresh(call.target(action, credential)))  # type: ignore[no-any-return]

        self.store.refresh(
            action["pool"], action["entry_id"], action["generation"], refresh_fn,
            lease_id=action["lease_id"], now=self._now(),
        )  # fmt: skip
        return call.resume()


class AsyncStore:
    """A :class:`~credpool.Store` (an SQLite database, or Redis) for asyncio: ``await
    AsyncStore.open(location, ...)`` (``Store.open``'s options), then every method of
    ``Store`` as a coroutine (``await store.status()``, ``await store.add_entry(...)``),
    run on the store's worker thread with the GIL released while it waits for a lock or
    IO: the event loop goes on meanwhile. :meth:`refresh`'s ``refresh_fn`` may return a
    coroutine (it runs on the loop, the refresh lock held). ``pool(key)`` is a
    :class:`StorePool` whose ``acall``/``alease`` (and the async transport) use the same
    worker. ``store`` is the ``Store`` itself, for sync code.
    """

    def __init__(self, store: Store, *, executor: Optional[Executor] = None) -> None:
        self.store = store
        self._worker = executor if executor is not None else _worker()

    @classmethod
    async def open(
        cls, location: Union[str, "os.PathLike[str]", None] = None, **options: Any
    ) -> "AsyncStore":
        """Opens the store off the event loop (a Redis connection, a database's first read,
        the migration of an earlier version's JSON store file)."""
        worker = _worker()
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(worker, functools.partial(Store.open, location, **options))
        return cls(store, executor=worker)

    @property
    def path(self) -> Optional[str]:
        return self.store.path

    @property
    def location(self) -> str:
        return self.store.location

    @property
    def writer(self) -> str:
        return self.store.writer

    def __repr__(self) -> str:
        return f"AsyncStore(location={self.store.location!r}, writer={self.store.writer!r})"

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, functools.partial(fn, *args, **kwargs))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.store, name)  # AttributeError for an unknown name
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)

        async def run(*args: Any, **kwargs: Any) -> Any:
            return await self._run(method, *args, **kwargs)

        run.__name__ = name
        return run

    async def refresh(
        self, pool: str, entry_id: str, generation: int, refresh_fn: Callable[[Any], Any],
        lease_id: Optional[int] = None, now: Optional[int] = None,
    ) -> Any:
        """``Store.refresh`` off the loop; ``refresh_fn`` may be a coroutine function."""
        resolve = _on_loop(asyncio.get_running_loop())
        return await self._run(self.store.refresh, pool, entry_id, generation,
                               lambda credential: resolve(refresh_fn(credential)), lease_id=lease_id, now=now)

    def pool(self, key: str, *, refresh: Optional[RefreshFn] = None, clock: Optional[Clock] = None) -> StorePool:
        """This store bound to one pool, sharing the store's worker thread."""
        return StorePool(self.store, key, refresh=refresh, clock=clock, executor=self._worker)

    async def aclose(self) -> None:
        """Stops the worker thread (pending calls finish first)."""
        await asyncio.get_running_loop().run_in_executor(None, self._worker.shutdown)

