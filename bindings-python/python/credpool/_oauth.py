"""The built-in OAuth refresher of the helpers: core builds each provider's token request
(``token_request``) and reads the answer (``token_response``); this module only carries out
the HTTP, with the standard library, bounded in time and size. The request holds the refresh
token: it is never logged, and errors name the endpoint, not the body."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional

if TYPE_CHECKING:
    from credpool._helpers import Lease

#: Longest wait for a token endpoint, in seconds.
TIMEOUT_S = 20.0
#: Most bytes of a token endpoint's answer read (an answer is a few hundred bytes).
MAX_ANSWER_BYTES = 64 * 1024


def builtin_refresh(registry: Any, now: Callable[[], Optional[int]]) -> Callable[[Lease], Mapping[str, Any]]:
    """A refresh callable for ``registry`` (a :class:`~credpool.Registry` or
    :class:`~credpool.Store`) that refreshes with the entry's built-in refresher; ``now``
    is the helpers' clock (None: the wall clock)."""

    def refresh(lease: Lease) -> Mapping[str, Any]:
        entry = {"pool": lease.pool, "entry_id": lease.entry_id}
        request = registry.handle({"type": "token_request", **entry}, now=now())
        response = _post(request["url"], request["headers"], request["body"])
        answer = registry.handle({"type": "token_response", **entry, "response": response}, now=now())
        return answer["result"]  # type: ignore[no-any-return]

    return refresh


def _post(url: str, headers: Mapping[str, str], body: str) -> Dict[str, Any]:
    """POSTs ``body``; the answer as core's ``response`` (status and text, or a network error)."""
    request = urllib.request.Request(url, data=body.encode(), headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:  # noqa: S310 (the provider's https endpoint)
            return {"status": answer.status, "body": _text(answer.read(MAX_ANSWER_BYTES))}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": _text(error.read(MAX_ANSWER_BYTES))}
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return {"network_error": f"{type(error).__name__}: {type(reason).__name__}"}


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
