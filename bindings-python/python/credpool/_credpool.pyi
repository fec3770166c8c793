import os
from typing import Any, Callable, Literal, Mapping, Optional, Sequence, Union, final

from credpool._store import StorePool

__all__ = ["Registry", "Store", "error_codes", "export_hermes", "import_hermes", "oauth_providers", "version"]

ErrorCode = Literal[
    "invalid_input",
    "invalid_clock",
    "invalid_pool_key",
    "unknown_pool",
    "unknown_entry",
    "unknown_lease",
    "unknown_call",
    "duplicate_entry",
    "invalid_entry",
    "invalid_policy",
    "invalid_state",
    "unsupported_schema_version",
    "foreign_document",
    "stale_refresh",
    "not_refreshable",
    "too_large",
    "no_credential",
    "lock_timeout",
    "io",
    "internal",
]

Output = dict[str, Any]

@final
class Registry:
    """Every pool of one process. Thread-safe; all times are epoch milliseconds."""

    def __new__(
        cls,
        writer: Optional[str] = None,
        seed: Optional[int] = None,
        state: Optional[Mapping[str, Any]] = None,
    ) -> "Registry": ...
    @property
    def writer(self) -> str: ...
    def handle(self, input: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def acquire(
        self,
        pool: str,
        model: Optional[str] = None,
        session: Optional[str] = None,
        now: Optional[int] = None,
        *,
        spread: bool = False,
        can_refresh: bool | str | None = None,
    ) -> Output: ...
    def report(
        self,
        pool: str,
        lease_id: int,
        status: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
        model: Optional[str] = None,
        network_error: Optional[str] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def begin_turn(self, pool: Optional[str] = None, now: Optional[int] = None) -> Output: ...
    def refresh_result(
        self,
        pool: str,
        entry_id: str,
        generation: int,
        result: Mapping[str, Any],
        lease_id: Optional[int] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def sync(self, state: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def export_state(self, now: Optional[int] = None) -> Output: ...
    def status(self, pool: Optional[str] = None, now: Optional[int] = None) -> Output: ...
    def add_entry(self, pool: str, entry: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def remove_entry(self, pool: str, entry_id: str, now: Optional[int] = None) -> Output: ...
    def reset(self, pool: str, entry_id: Optional[str] = None, now: Optional[int] = None) -> Output: ...
    def release(self, pool: str, lease_id: int, now: Optional[int] = None) -> Output: ...
    def credential(self, pool: str, entry_id: str, now: Optional[int] = None) -> Output: ...
    def configure_pool(
        self,
        pool: str,
        strategy: Optional[Literal["fill_first", "round_robin", "least_used", "random"]] = None,
        policy: Optional[Mapping[str, Any]] = None,
        fallback: Optional[Sequence[Mapping[str, str]]] = None,
        api: Optional[Literal["openai", "anthropic"]] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def set_priority(self, pool: str, entry_id: str, priority: int, now: Optional[int] = None) -> Output: ...
    def check_refresh(self, pool: str, entry_id: str, generation: int, now: Optional[int] = None) -> Output: ...
    def tick(self, now: Optional[int] = None) -> Output: ...
    def seed(
        self,
        env: Optional[Mapping[str, str]] = None,
        config: Optional[Mapping[str, Any]] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def call_start(
        self,
        pool: str,
        model: Optional[str] = None,
        session: Optional[str] = None,
        max_sends: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        max_total_wait_ms: Optional[int] = None,
        max_hops: Optional[int] = None,
        api: Optional[Literal["openai", "anthropic"]] = None,
        url: Optional[str] = None,
        request_id: Optional[str] = None,
        client_retry: bool = False,
        probe: bool = False,
        spread: bool = False,
        can_refresh: bool | str | None = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def call_report(
        self,
        call_id: int,
        status: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
        model: Optional[str] = None,
        network_error: Optional[str] = None,
        delivered: bool = False,
        now: Optional[int] = None,
    ) -> Output: ...
    def call_refreshed(self, call_id: int, result: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def call_resume(self, call_id: int, now: Optional[int] = None) -> Output: ...
    def call_cancel(self, call_id: int, now: Optional[int] = None) -> Output: ...

@final
class Store:
    """A registry persisted in an SQLite database shared by the processes of one machine,
    or in Redis when opened with a ``redis://`` URL. Thread-safe. ``credpool.FileStore``
    is a deprecated alias.

    Same methods as :class:`Registry`; every input that may change state is one locked
    transaction (merge what other processes wrote, apply, write what changed).
    Create with :meth:`open`.
    """

    @staticmethod
    def open(
        location: Union[str, os.PathLike[str], None] = None,
        *,
        writer: Optional[str] = None,
        seed: Optional[int] = None,
        lock_timeout: float = 10.0,
        durable: bool = True,
        namespace: Optional[str] = None,
        connect_timeout: float = 2.0,
        io_timeout: float = 2.0,
        refresh_lease: float = 30.0,
        reconnect_interval: float = 1.0,
        tls_ca_file: Union[str, os.PathLike[str], None] = None,
    ) -> "Store":
        """Opens the SQLite database at a path (default ``$CREDPOOL_HOME/pools.sqlite``,
        else ``$XDG_CONFIG_HOME/credpool/pools.sqlite``, else
        ``~/.config/credpool/pools.sqlite``; created, mode 0600, by the first write), or a
        Redis store for a ``redis://`` / ``rediss://`` URL (``?namespace=NAME`` or
        ``namespace`` picks the key namespace). A JSON store file of an earlier version
        (``pools.json``) is migrated on open into ``pools.sqlite`` next to it. Durations
        are in seconds; ``durable`` (databases only) fsyncs writes (tokens and
        configuration at once, counters with the next write a second or more after the last
        fsync, and when the store closes; false: never), the other options concern Redis
        only (``tls_ca_file``: a PEM file of certificate authorities to trust for
        ``rediss://`` instead of the system's). Redis unreachable: :class:`StoreIOError` (``io``)."""
    @staticmethod
    def move_aside(path: Union[str, os.PathLike[str]]) -> str:
        """Moves a (corrupt) store file aside as ``<path>.corrupt-<epoch ms>``."""
    @property
    def path(self) -> Optional[str]:
        """The database file (``None`` for a Redis store)."""
    @property
    def location(self) -> str:
        """The database path, or the Redis URL without credentials."""
    @property
    def writer(self) -> str: ...
    def reload(self) -> bool: ...
    def has_pending(self) -> bool:
        """Whether changes wait to reach Redis (decided while it was unreachable)."""
    def flush(self) -> None:
        """Writes the changes queued while Redis was unreachable (``io`` if it still is)."""
    def refresh(
        self,
        pool: str,
        entry_id: str,
        generation: int,
        refresh_fn: Callable[[dict[str, Any]], Mapping[str, Any]],
        lease_id: Optional[int] = None,
        now: Optional[int] = None,
    ) -> Output:
        """Single-flight OAuth refresh: ``refresh_fn(credential)`` runs under the store's
        refresh lock unless another process already rotated the token (then adopted).
        Only another refresh waits meanwhile; other calls go on."""
    def pool(
        self,
        key: str,
        *,
        refresh: Optional[Callable[[Any], Mapping[str, Any]]] = None,
        clock: Optional[Callable[[], int]] = None,
    ) -> StorePool: ...
    def handle(self, input: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def acquire(
        self,
        pool: str,
        model: Optional[str] = None,
        session: Optional[str] = None,
        now: Optional[int] = None,
        *,
        spread: bool = False,
        can_refresh: bool | str | None = None,
    ) -> Output: ...
    def report(
        self,
        pool: str,
        lease_id: int,
        status: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
        model: Optional[str] = None,
        network_error: Optional[str] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def begin_turn(self, pool: Optional[str] = None, now: Optional[int] = None) -> Output: ...
    def refresh_result(
        self,
        pool: str,
        entry_id: str,
        generation: int,
        result: Mapping[str, Any],
        lease_id: Optional[int] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def sync(self, state: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def export_state(self, now: Optional[int] = None) -> Output: ...
    def status(self, pool: Optional[str] = None, now: Optional[int] = None) -> Output: ...
    def add_entry(self, pool: str, entry: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def remove_entry(self, pool: str, entry_id: str, now: Optional[int] = None) -> Output: ...
    def reset(self, pool: str, entry_id: Optional[str] = None, now: Optional[int] = None) -> Output: ...
    def release(self, pool: str, lease_id: int, now: Optional[int] = None) -> Output: ...
    def credential(self, pool: str, entry_id: str, now: Optional[int] = None) -> Output: ...
    def configure_pool(
        self,
        pool: str,
        strategy: Optional[Literal["fill_first", "round_robin", "least_used", "random"]] = None,
        policy: Optional[Mapping[str, Any]] = None,
        fallback: Optional[Sequence[Mapping[str, str]]] = None,
        api: Optional[Literal["openai", "anthropic"]] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def set_priority(self, pool: str, entry_id: str, priority: int, now: Optional[int] = None) -> Output: ...
    def check_refresh(self, pool: str, entry_id: str, generation: int, now: Optional[int] = None) -> Output: ...
    def tick(self, now: Optional[int] = None) -> Output: ...
    def seed(
        self,
        env: Optional[Mapping[str, str]] = None,
        config: Optional[Mapping[str, Any]] = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def call_start(
        self,
        pool: str,
        model: Optional[str] = None,
        session: Optional[str] = None,
        max_sends: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        max_total_wait_ms: Optional[int] = None,
        max_hops: Optional[int] = None,
        api: Optional[Literal["openai", "anthropic"]] = None,
        url: Optional[str] = None,
        request_id: Optional[str] = None,
        client_retry: bool = False,
        probe: bool = False,
        spread: bool = False,
        can_refresh: bool | str | None = None,
        now: Optional[int] = None,
    ) -> Output: ...
    def call_report(
        self,
        call_id: int,
        status: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
        model: Optional[str] = None,
        network_error: Optional[str] = None,
        delivered: bool = False,
        now: Optional[int] = None,
    ) -> Output: ...
    def call_refreshed(self, call_id: int, result: Mapping[str, Any], now: Optional[int] = None) -> Output: ...
    def call_resume(self, call_id: int, now: Optional[int] = None) -> Output: ...
    def call_cancel(self, call_id: int, now: Optional[int] = None) -> Output: ...

def error_codes() -> list[ErrorCode]: ...
def oauth_providers() -> list[str]: ...
def version() -> str: ...
def import_hermes(auth_json: Mapping[str, Any], now: Optional[int] = None) -> dict[str, Any]:
    """Hermes ``auth.json`` (its ``credential_pool``) -> credpool state document."""
def export_hermes(
    state: Mapping[str, Any], base: Optional[Mapping[str, Any]] = None, now: Optional[int] = None
) -> dict[str, Any]:
    """Credpool state document -> Hermes ``auth.json`` (``base``'s other keys kept)."""
