"""credpool: credential-rotation state machine for LLM agents (Python bindings).

Every error raised by the extension is a :class:`CredpoolError` carrying a stable
snake_case ``.code`` (see :func:`error_codes`); messages may change, codes do not.

:class:`Store` persists a registry in an SQLite database shared by the processes of one
machine, or in Redis; ``FileStore`` and ``AsyncFileStore`` are deprecated aliases of
:class:`Store` and :class:`AsyncStore` (the store is no longer one file), kept for one
release.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any


class CredpoolError(Exception):
    """Base class of every credpool error; ``.code`` is the stable error code."""

    code: str = "internal"

    def __init__(self, message: str = "", code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidInputError(CredpoolError, ValueError):
    """Malformed input, entry, policy, pool key or state document (``invalid_*``, ``too_large``, ...)."""

    code = "invalid_input"


class InvalidClockError(InvalidInputError):
    """``now`` is not an integer of epoch ms in 0..=2**53 (``invalid_clock``)."""

    code = "invalid_clock"


class UnknownError(CredpoolError, KeyError):
    """Something named by the input does not exist."""


class UnknownPoolError(UnknownError):
    code = "unknown_pool"


class UnknownEntryError(UnknownError):
    code = "unknown_entry"


class UnknownLeaseError(UnknownError):
    code = "unknown_lease"


class UnknownCallError(UnknownError):
    code = "unknown_call"


class DuplicateEntryError(CredpoolError, ValueError):
    code = "duplicate_entry"


class RefreshError(CredpoolError):
    """``stale_refresh`` or ``not_refreshable``."""

    code = "stale_refresh"


class NoCredentialError(CredpoolError):
    """No entry can serve the request now. ``.action`` is the call driver's action that
    ended it (``give_up``, or a ``refresh`` nobody could perform); ``.decision`` a raw
    decision (``wait`` or ``fail``) when one was given."""

    code = "no_credential"

    def __init__(
        self,
        message: str = "",
        code: str | None = None,
        decision: dict[str, Any] | None = None,
        action: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code)
        self.decision = decision
        self.action = action


class LockTimeoutError(CredpoolError, TimeoutError):
    """The store's lock stayed held by another process past the timeout (``lock_timeout``)."""

    code = "lock_timeout"


class StoreIOError(CredpoolError, OSError):
    """Reading or writing the store's database failed, or Redis is unreachable (``io``)."""

    code = "io"


# The extension imports the classes above, so it is imported after them.
from credpool._credpool import (  # noqa: E402
    Registry,
    error_codes,
    export_hermes,
    import_hermes,
    oauth_providers,
    version,
)
from credpool._credpool import Store  # noqa: E402
from credpool._helpers import (  # noqa: E402
    AsyncLeaseContext,
    Budgets,
    CredentialPool,
    Lease,
    LeaseContext,
)
from credpool._responses import response_info  # noqa: E402
from credpool._store import AsyncStore, StorePool  # noqa: E402
from credpool._transport import AsyncCredentialTransport, CredentialTransport  # noqa: E402

#: Names of earlier versions, kept for one release: the store is an SQLite database, or
#: Redis, not one file any more. Using one warns (``DeprecationWarning``).
_DEPRECATED = {"FileStore": ("Store", Store), "AsyncFileStore": ("AsyncStore", AsyncStore)}


if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ warns first
    FileStore = Store
    AsyncFileStore = AsyncStore


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        warnings.warn(
            f"credpool.{name} is deprecated: use credpool.{new} (same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    raise AttributeError(f"module 'credpool' has no attribute {name!r}")

__all__ = [
    "AsyncCredentialTransport",
    "AsyncFileStore",
    "AsyncLeaseContext",
    "AsyncStore",
    "Budgets",
    "CredentialPool",
    "CredentialTransport",
    "CredpoolError",
    "DuplicateEntryError",
    "FileStore",
    "InvalidClockError",
    "InvalidInputError",
    "LockTimeoutError",
    "Lease",
    "LeaseContext",
    "NoCredentialError",
    "RefreshError",
    "Store",
    "StoreIOError",
    "StorePool",
    "Registry",
    "UnknownEntryError",
    "UnknownError",
    "UnknownCallError",
    "UnknownLeaseError",
    "UnknownPoolError",
    "error_codes",
    "export_hermes",
    "import_hermes",
    "oauth_providers",
    "response_info",
    "version",
]
