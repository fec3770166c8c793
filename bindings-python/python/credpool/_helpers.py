"""Idiomatic helpers over :class:`credpool.Registry`: leases as context managers.

Nothing here takes a decision: core decides everything, these helpers only follow
the decisions it returns (``use``, ``retry_same``, ``refresh``, ``fallback``, ``wait``,
``fail``, ``done``) through the public methods of ``Registry``.

* :func:`response_info` turns a provider response or exception (httpx, httpx2, openai,
  anthropic, requests, builtin ``ConnectionError``/``TimeoutError``, plain dicts) into
  the keyword arguments of ``Registry.report``. None of those libraries is imported
  here: an object can only come from a library its caller already imported, so they
  are looked up in ``sys.modules``.
* :class:`CredentialPool` binds a registry to one pool; ``pool.lease()`` is a context
  manager yielding a :class:`Lease` (the revealed credential of one attempt) that
  reports the attempt's outcome when the block ends.
"""

from __future__ import annotations

import json
import sys
import time
from types import TracebackType
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Type

from credpool import CredpoolError, NoCredentialError, UnknownLeaseError
from credpool._credpool import Registry

__all__ = [
    "CredentialPool",
    "Lease",
    "LeaseContext",
    "credential_pool",
    "response_info",
]

Decision = Dict[str, Any]
"""A decision (or other output) of the registry: a dict with ``"type"`` and ``"changed"``."""
Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""
RefreshFn = Callable[["Lease"], Mapping[str, Any]]
"""Refreshes an OAuth token: gets the :class:`Lease` (its ``refresh_token`` included) and
returns ``{"type": "refreshed", "access_token", "refresh_token"?, "expires_at"?}``,
``{"type": "failed", "terminal": bool}`` or ``{"type": "adopted"}``."""

#: Characters of a text body passed on (core scans at most 64 KiB of it).
MAX_BODY_CHARS = 64 * 1024
#: Text longer than this is not parsed as JSON but passed on truncated.
MAX_JSON_CHARS = 1024 * 1024
#: Characters of one header value passed on (core reads at most 1 KiB of it).
MAX_HEADER_CHARS = 4096
#: Decisions followed by one acquisition (fallback hops, refreshes) before giving up.
MAX_HOPS = 8

# Decisions after which core keeps a lease open under ``lease_id``.
_OPEN_LEASE = ("use", "retry_same", "refresh")


# --------------------------------------------------------------------------- response_info


def _module_class(module: str, name: str) -> Optional[type]:
    """``module.name`` if the module is already imported and has such a class, else None."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def _isinstance(obj: object, module: str, name: str) -> bool:
    cls = _module_class(module, name)
    return cls is not None and isinstance(obj, cls)


def _headers(raw: Any) -> Dict[str, str]:
    """A lower-cased ``{name: value}`` dict of str from any headers mapping."""
    out: Dict[str, str] = {}
    if raw is None:
        return out
    items = raw.items() if hasattr(raw, "items") else raw
    try:
        for key, value in items:
            if isinstance(key, bytes):
                key = key.decode("latin-1")
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if isinstance(key, str) and isinstance(value, (str, int, float)):
                name = key.lower()
                text = str(value)[:MAX_HEADER_CHARS]
                out[name] = f"{out[name]}, {text}" if name in out else text
    except (TypeError, ValueError):
        return out
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-JSON constant {name}")


def _body_from_text(text: Optional[str], content_type: str = "") -> Any:
    """Parsed JSON when the text is JSON, else the text (bounded); None when empty."""
    if not text:
        return None
    if len(text) <= MAX_JSON_CHARS and ("json" in content_type or text.lstrip()[:1] in ("{", "[")):
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError:
            pass
    return text[:MAX_BODY_CHARS]


def _http_response(resp: Any) -> Dict[str, Any]:
    """Report kwargs of an httpx / httpx2 / requests response (body read if already read)."""
    headers = _headers(getattr(resp, "headers", None))
    try:
        text = resp.text
    except Exception:  # streaming response not read, undecodable content, ...
        text = None
    status = getattr(resp, "status_code", None)
    return {
        "status": status if isinstance(status, int) and 0 <= status <= 0xFFFF else None,
        "headers": headers,
        "body": _body_from_text(text if isinstance(text, str) else None, headers.get("content-type", "")),
        "network_error": None,
    }


def _network(kind: str) -> Dict[str, Any]:
    return {"status": None, "headers": {}, "body": None, "network_error": kind}


def _httpx_network_kind(exc: BaseException) -> Optional[str]:
    """The network-error kind of an httpx / httpx2 transport exception, else None."""
    for mod in ("httpx", "httpx2"):
        if not _isinstance(exc, mod, "TransportError"):
            continue
        for name, kind in (
            ("TimeoutException", "timeout"),
            ("ConnectError", "connect"),
            ("ReadError", "read"),
            ("WriteError", "write"),
            ("ProxyError", "proxy"),
            ("ProtocolError", "protocol"),
        ):
            if _isinstance(exc, mod, name):
                return kind
        return "transport"
    return None


def _builtin_network_kind(exc: BaseException) -> Optional[str]:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, ConnectionError):
        return "connect"
    return None


def _dict_info(obj: Mapping[str, Any]) -> Dict[str, Any]:
    status = obj.get("status", obj.get("status_code"))
    body = obj.get("body", obj.get("json", obj.get("text")))
    if isinstance(body, str):
        body = body[:MAX_BODY_CHARS]
    network_error = obj.get("network_error")
    return {
        "status": status if isinstance(status, int) and not isinstance(status, bool) else None,
        "headers": _headers(obj.get("headers")),
        "body": body,
        "network_error": str(network_error) if network_error is not None else None,
    }


def _sdk_info(exc: BaseException) -> Optional[Dict[str, Any]]:
    """openai / anthropic SDK errors (same class names in both)."""
    for mod in ("openai", "anthropic"):
        if _isinstance(exc, mod, "APIStatusError"):
            info = _http_response(getattr(exc, "response", None))
            status = getattr(exc, "status_code", None)
            if isinstance(status, int):
                info["status"] = status
            if info["body"] is None:  # the SDK's decoded body (its "error" member for openai)
                body = getattr(exc, "body", None)
                info["body"] = body[:MAX_BODY_CHARS] if isinstance(body, str) else body
            return info
        if _isinstance(exc, mod, "APITimeoutError"):
            return _network("timeout")
        if _isinstance(exc, mod, "APIConnectionError"):
            cause = exc.__cause__
            kind = None
            if cause is not None:
                kind = _httpx_network_kind(cause) or _builtin_network_kind(cause)
            return _network(kind or "connect")
    return None


def response_info(obj: object) -> Optional[Dict[str, Any]]:
    """Report kwargs ``{status, headers, body, network_error}`` of a provider outcome.

    Understands ``httpx``/``httpx2`` ``Response``, ``HTTPStatusError`` (its response) and
    ``TransportError`` (a network error, ``TimeoutException`` as ``"timeout"``); the
    ``openai`` and ``anthropic`` SDK errors (``APIStatusError``: status, headers and body;
    ``APIConnectionError``/``APITimeoutError``: a network error); ``requests``
    ``Response``/``HTTPError``/``Timeout``/``ConnectionError``; builtin ``ConnectionError``
    and ``TimeoutError``; and plain dicts (``status``/``status_code``, ``headers``,
    ``body``/``json``/``text``, ``network_error``).

    Headers come back as a lower-cased dict of str; the body as parsed JSON when it is
    JSON, else as text (bounded). Returns None for anything else, such as a ``KeyError``
    raised by user code: that is no outcome of the provider.
    """
    if isinstance(obj, Mapping):
        return _dict_info(obj)
    for mod in ("httpx", "httpx2", "requests"):
        if _isinstance(obj, mod, "Response"):
            return _http_response(obj)
    if not isinstance(obj, BaseException):
        return None
    sdk = _sdk_info(obj)
    if sdk is not None:
        return sdk
    for mod in ("httpx", "httpx2"):
        if _isinstance(obj, mod, "HTTPStatusError"):
            return _http_response(getattr(obj, "response", None))
    kind = _httpx_network_kind(obj)
    if kind is not None:
        return _network(kind)
    if _isinstance(obj, "requests", "RequestException"):
        response = getattr(obj, "response", None)
        if _isinstance(response, "requests", "Response"):
            return _http_response(response)
        if _isinstance(obj, "requests", "Timeout"):
            return _network("timeout")
        if _isinstance(obj, "requests", "ConnectionError"):
            return _network("connect")
        if _isinstance(obj, "requests", "ChunkedEncodingError"):
            return _network("read")
        return None
    kind = _builtin_network_kind(obj)
    return _network(kind) if kind is not None else None


# --------------------------------------------------------------------------- leases


def _no_credential(decision: Decision, pool: str) -> NoCredentialError:
    """``NoCredentialError`` carrying the decision that left nothing to use."""
    reason = decision.get("reason")
    text = f"no credential to use in pool {pool!r}: {decision.get('type')}"
    if reason:
        text += f" ({reason})"
    if decision.get("type") == "wait":
        text += f" until {decision.get('until')}"
    return NoCredentialError(text, "no_credential", decision=decision)


class Lease:
    """One attempt's claim on an entry, with the entry's revealed credential.

    ``repr()`` never shows a secret. Report the attempt once: :meth:`report`,
    :meth:`report_success`, :meth:`report_exception` or :meth:`release`; afterwards
    :attr:`decision` holds what core answered (``done``, ``retry_same``, ``use``,
    ``refresh``, ``fallback``, ``wait`` or ``fail``). Follow it with
    ``pool.lease(after=lease)``, or drop it with :meth:`close`.
    """

    __slots__ = (
        "_owner",
        "pool",
        "model",
        "session",
        "entry_id",
        "lease_id",
        "access_token",
        "refresh_token",
        "expires_at",
        "base_url",
        "generation",
        "granted",
        "decision",
        "report_error",
    )

    def __init__(
        self,
        owner: CredentialPool,
        model: Optional[str],
        session: Optional[str],
        granted: Decision,
        credential: Mapping[str, Any],
    ) -> None:
        self._owner = owner
        #: Pool the lease is on (after a fallback: the fallback pool).
        self.pool: str = owner.name
        #: Model to request (a fallback's model when it named one).
        self.model: Optional[str] = model
        self.session: Optional[str] = session
        self.entry_id: str = granted["entry_id"]
        self.lease_id: int = granted["lease_id"]
        self.access_token: Optional[str] = credential.get("access_token")
        self.refresh_token: Optional[str] = credential.get("refresh_token")
        self.expires_at: Optional[int] = credential.get("expires_at")
        self.base_url: Optional[str] = credential.get("base_url")
        self.generation: int = credential.get("generation", 0)
        #: The decision that granted this lease (``use`` or ``retry_same``).
        self.granted: Decision = granted
        #: The decision of this attempt's report; None until reported.
        self.decision: Optional[Decision] = None
        #: A credpool error raised while reporting on exit from a failing block (the
        #: block's own exception propagates instead).
        self.report_error: Optional[CredpoolError] = None

    def __repr__(self) -> str:
        state = self.decision["type"] if self.decision is not None else "open"
        return (
            f"Lease(pool={self.pool!r}, model={self.model!r}, entry_id={self.entry_id!r}, "
            f"lease_id={self.lease_id}, generation={self.generation}, "
            f"base_url={self.base_url!r}, state={state!r})"
        )

    @property
    def credential_pool(self) -> CredentialPool:
        """The pool view this lease is on."""
        return self._owner

    @property
    def reported(self) -> bool:
        """Whether this attempt was reported (or released)."""
        return self.decision is not None

    def _settle(self, send: Callable[[], Decision]) -> Decision:
        if self.decision is not None:
            raise UnknownLeaseError(f"lease {self.lease_id} was already reported", "unknown_lease")
        decision = send()
        self.decision = decision
        return decision

    def report(self, response: object) -> Decision:
        """Reports a provider response or exception (see :func:`response_info`); returns the decision."""
        info = response_info(response)
        if info is None:
            raise TypeError(f"cannot report a {type(response).__name__}: not a provider response")
        return self._settle(lambda: self._owner._report_info(self.lease_id, info, self.model))

    def report_success(self) -> Decision:
        """Reports a success (status 200); returns the ``done`` decision."""
        info: Dict[str, Any] = {"status": 200, "headers": {}, "body": None, "network_error": None}
        return self._settle(lambda: self._owner._report_info(self.lease_id, info, self.model))

    def report_exception(self, exc: BaseException) -> Decision:
        """Reports ``exc`` if it is a provider outcome, else releases the lease (nothing marked).

        Returns the report's decision, or the ``released`` output.
        """
        if response_info(exc) is None:
            return self.release()
        return self.report(exc)

    def release(self) -> Decision:
        """Closes the lease without an outcome (nothing marked); returns ``released``."""
        return self._settle(lambda: self._owner.release(self.lease_id))

    def close(self) -> None:
        """Releases the lease a reported decision left open (``use``, ``retry_same``,
        ``refresh``) when the caller will not follow it; releases this lease if unreported."""
        if self.decision is None:
            self.release()
        elif self.decision.get("type") in _OPEN_LEASE:
            self._owner.release(self.decision["lease_id"])


class LeaseContext:
    """``with pool.lease(...) as lease:`` — acquires on enter, reports on exit.

    On exit: nothing if the block already reported; success (200) when the block ended
    normally; the exception when :func:`response_info` understands it (the exception
    still propagates); otherwise the lease is released, nothing marked, and the
    exception propagates.
    """

    def __init__(
        self,
        owner: CredentialPool,
        model: Optional[str],
        session: Optional[str],
        after: Optional[Lease],
    ) -> None:
        self._owner = owner
        self._model = model
        self._session = session
        self._after = after
        self.lease: Optional[Lease] = None

    def __enter__(self) -> Lease:
        after = self._after
        if after is None:
            decision = self._owner.acquire(self._model, self._session)
            self.lease = self._owner._follow(decision, self._model, self._session)
        else:
            if after.decision is None:
                raise ValueError("after= needs a reported lease")
            self.lease = after._owner._follow(after.decision, after.model, after.session)
        return self.lease

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        lease = self.lease
        if lease is None or lease.reported:
            return
        if exc is None:
            lease.report_success()
            return
        try:
            lease.report_exception(exc)
        except CredpoolError as error:  # never hide the block's own exception
            lease.report_error = error


class CredentialPool:
    """A registry bound to one pool.

    ``refresh`` (optional) performs OAuth refreshes when core asks for one; without it a
    ``refresh`` decision raises :class:`~credpool.NoCredentialError`. ``clock`` returns
    epoch ms and is passed as ``now`` to every call (default: the registry reads the wall
    clock). ``max_hops`` bounds the decisions followed per acquisition.
    """

    def __init__(
        self,
        registry: Registry,
        pool: str,
        *,
        refresh: Optional[RefreshFn] = None,
        clock: Optional[Clock] = None,
        max_hops: int = MAX_HOPS,
    ) -> None:
        self.registry = registry
        self.name = pool
        self.refresh = refresh
        self.clock = clock
        self.max_hops = max_hops

    def __repr__(self) -> str:
        return f"CredentialPool({self.name!r})"

    def _now(self) -> Optional[int]:
        return self.clock() if self.clock is not None else None

    def _now_ms(self) -> int:
        now = self._now()
        return now if now is not None else time.time_ns() // 1_000_000

    def _on(self, pool: str) -> CredentialPool:
        if pool == self.name:
            return self
        return CredentialPool(
            self.registry, pool, refresh=self.refresh, clock=self.clock, max_hops=self.max_hops
        )

    # -- plain calls

    def acquire(self, model: Optional[str] = None, session: Optional[str] = None) -> Decision:
        """``Registry.acquire`` on this pool; returns the decision."""
        return self.registry.acquire(self.name, model=model, session=session, now=self._now())

    def report(self, lease_id: int, response_or_exception: object, model: Optional[str] = None) -> Decision:
        """Reports a provider response or exception against ``lease_id``; returns the decision.

        Raises ``TypeError`` for an object :func:`response_info` does not understand.
        """
        info = response_info(response_or_exception)
        if info is None:
            raise TypeError(
                f"cannot report a {type(response_or_exception).__name__}: not a provider response"
            )
        return self._report_info(lease_id, info, model)

    def report_exception(self, exc: BaseException, *, lease_id: int, model: Optional[str] = None) -> Decision:
        """Reports ``exc`` if it is a provider outcome, else releases the lease (nothing marked).

        Returns the report's decision, or the ``released`` output.
        """
        info = response_info(exc)
        if info is None:
            return self.release(lease_id)
        return self._report_info(lease_id, info, model)

    def release(self, lease_id: int) -> Decision:
        """Closes ``lease_id`` without an outcome (nothing marked)."""
        return self.registry.release(self.name, lease_id, now=self._now())

    def _report_info(self, lease_id: int, info: Mapping[str, Any], model: Optional[str]) -> Decision:
        return self.registry.report(
            self.name,
            lease_id,
            status=info.get("status"),
            headers=info.get("headers") or None,
            body=info.get("body"),
            model=model,
            network_error=info.get("network_error"),
            now=self._now(),
        )

    # -- following decisions

    def lease(
        self,
        model: Optional[str] = None,
        session: Optional[str] = None,
        *,
        after: Optional[Lease] = None,
    ) -> LeaseContext:
        """A context manager yielding a :class:`Lease` (see :class:`LeaseContext`).

        Without ``after`` it acquires; with ``after`` (a reported lease) it follows that
        lease's decision instead: the same lease after ``retry_same`` (the caller waits
        ``delay_ms`` first), the rotated lease after ``use``, a refresh, or a fallback.
        A ``wait``, ``fail``, ``done`` or unhandled ``refresh`` raises
        :class:`~credpool.NoCredentialError` carrying ``.decision``.
        """
        return LeaseContext(self, model, session, after)

    def _resolve(
        self, decision: Decision, model: Optional[str], session: Optional[str]
    ) -> Tuple[CredentialPool, Optional[str], Decision, Optional[Lease]]:
        """Follows ``decision`` until a lease is granted or nothing is usable.

        Returns the pool and model reached, the last decision, and the lease (None when
        the last decision is ``wait``, ``fail``, ``done``, a ``refresh`` without a refresh
        callable (its lease released), or when ``max_hops`` ran out).
        """
        pool: CredentialPool = self
        for _ in range(self.max_hops):
            kind = decision.get("type")
            if kind in ("use", "retry_same"):
                try:
                    credential = pool.registry.credential(pool.name, decision["entry_id"], now=pool._now())
                except BaseException:
                    pool._release_quietly(decision["lease_id"])
                    raise
                return pool, model, decision, Lease(pool, model, session, decision, credential)
            if kind == "refresh":
                if pool.refresh is None:
                    pool.release(decision["lease_id"])
                    return pool, model, decision, None
                decision = pool._refresh(decision, model, session)
            elif kind == "fallback":
                pool = pool._on(decision["pool"])
                model = decision.get("model", model)
                decision = pool.acquire(model, session)
            else:
                return pool, model, decision, None
        return pool, model, decision, None

    def _refresh(self, decision: Decision, model: Optional[str], session: Optional[str]) -> Decision:
        """Runs the refresh callable for a ``refresh`` decision; returns core's answer."""
        assert self.refresh is not None
        entry_id, lease_id = decision["entry_id"], decision["lease_id"]
        try:
            credential = self.registry.credential(self.name, entry_id, now=self._now())
            target = Lease(self, model, session, decision, credential)
            result = self.refresh(target)
            return self.registry.refresh_result(
                self.name, entry_id, decision["generation"], result, lease_id=lease_id, now=self._now()
            )
        except BaseException:
            self._release_quietly(lease_id)
            raise

    def _release_quietly(self, lease_id: int) -> None:
        """Releases ``lease_id`` on a failure path, where core may already have closed it."""
        try:
            self.release(lease_id)
        except UnknownLeaseError:
            pass

    def _follow(self, decision: Decision, model: Optional[str], session: Optional[str]) -> Lease:
        pool, _, last, lease = self._resolve(decision, model, session)
        if lease is None:
            raise _no_credential(last, pool.name)
        return lease

    def call(
        self,
        fn: Callable[[Lease], Any],
        model: Optional[str] = None,
        session: Optional[str] = None,
        *,
        max_attempts: int = 5,
        max_wait_ms: int = 60_000,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> Any:
        """Calls ``fn(lease)`` until it succeeds, following core's decisions.

        ``retry_same``: sleep ``delay_ms`` and call again on the same lease; ``use``: call
        again with the rotated credential; ``fallback``: switch pool/model; ``wait``:
        sleep until ``until`` when that is at most ``max_wait_ms`` away, then acquire
        again. ``fail`` (or a longer wait, or ``max_attempts`` calls) re-raises the last
        provider exception, or raises :class:`~credpool.NoCredentialError` when no call
        was made. Exceptions that are no provider outcome release the lease and propagate.
        """
        pool: CredentialPool = self
        decision = self.acquire(model, session)
        last_exc: Optional[BaseException] = None
        attempts = 0
        while True:
            pool, model, decision, lease = pool._resolve(decision, model, session)
            if lease is None:
                if decision.get("type") == "wait" and attempts < max_attempts:
                    delay = int(decision["until"]) - pool._now_ms()
                    if delay <= max_wait_ms:
                        sleep(max(delay, 0) / 1000)
                        decision = pool.acquire(model, session)
                        attempts += 1  # a wait counts as an attempt: bounded loop
                        continue
                if last_exc is not None:
                    raise last_exc
                raise _no_credential(decision, pool.name)
            attempts += 1
            try:
                result = fn(lease)
            except BaseException as exc:
                decision = lease.report_exception(exc)
                if decision.get("type") == "released" or attempts >= max_attempts:
                    lease.close()
                    raise
                last_exc = exc
                if decision.get("type") == "retry_same":
                    sleep(int(decision.get("delay_ms", 0)) / 1000)
                pool = lease.credential_pool
                continue
            lease.report_success()
            return result


def credential_pool(
    registry: Registry,
    pool: str,
    *,
    refresh: Optional[RefreshFn] = None,
    clock: Optional[Clock] = None,
) -> CredentialPool:
    """``CredentialPool(registry, pool, ...)``: a registry bound to one pool."""
    return CredentialPool(registry, pool, refresh=refresh, clock=clock)
