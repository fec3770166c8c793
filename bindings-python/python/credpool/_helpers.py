"""Idiomatic helpers over core's call driver (SPEC §7): ``pool.call(fn)`` and ``pool.lease()``.

Nothing here takes a decision: core's call driver answers one action at a time (``send``,
``sleep``, ``refresh``, ``done``, ``give_up``) and these helpers only perform it and report
what it produced, through ``handle`` (on a ``Registry`` or a ``FileStore``).

* :func:`response_info` turns a provider response or exception (httpx, httpx2, openai,
  anthropic, requests, builtin ``ConnectionError``/``TimeoutError``, plain dicts) into
  what core classifies. None of those libraries is imported here: an object can only come
  from a library its caller already imported, so they are looked up in ``sys.modules``.
* :class:`CredentialPool` binds a registry to one pool. ``pool.call(fn)`` runs one call:
  ``fn(lease)`` for every ``send``, until ``done`` or ``give_up``. ``pool.lease()`` is a
  context manager: one ``with`` block is one send of a call.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from types import TracebackType
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Type

from credpool import CredpoolError, NoCredentialError
from credpool._credpool import Registry

__all__ = [
    "CredentialPool",
    "Lease",
    "LeaseContext",
    "credential_pool",
    "response_info",
]

Decision = Dict[str, Any]
"""An output of the registry (a decision, an action, ...): a dict with ``"type"``."""
Action = Dict[str, Any]
"""An action of the call driver: ``send``, ``sleep``, ``refresh``, ``done`` or ``give_up``."""
Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""
RefreshFn = Callable[["Lease"], Mapping[str, Any]]
"""Refreshes an OAuth token: gets the :class:`Lease` (its ``refresh_token`` included) and
returns ``{"type": "refreshed", "access_token", "refresh_token"?, "expires_at"?}``,
``{"type": "failed", "terminal": bool}`` or ``{"type": "adopted"}``."""
Sleep = Callable[[float], Any]
"""Sleeps for a number of seconds (``time.sleep``)."""

#: Characters of a text body passed on (core scans at most 64 KiB of it).
MAX_BODY_CHARS = 64 * 1024
#: Text longer than this is not parsed as JSON but passed on truncated.
MAX_JSON_CHARS = 1024 * 1024
#: Characters of one header value passed on (core reads at most 1 KiB of it).
MAX_HEADER_CHARS = 4096
#: Bytes of an error body not read yet (a streamed response) that are read to classify
#: it: a longer (or chunked) body is left unread and reported without its body.
MAX_READ_BYTES = 64 * 1024


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


def _body_text(resp: Any, headers: Mapping[str, str]) -> Optional[str]:
    """The text of a response's body: as read already, else read when it declares at most
    ``MAX_READ_BYTES`` (a streamed response), else None (the stream is left unread)."""
    try:
        if getattr(resp, "_content", False) is False:  # httpx and requests: not read yet
            length = headers.get("content-length", "")
            if not (length.isdigit() and int(length) <= MAX_READ_BYTES):
                return None
            read = getattr(resp, "read", None)  # httpx; requests reads on .text
            if callable(read):
                read()
        text = resp.text
    except Exception:  # an async stream, undecodable content, a closed connection, ...
        return None
    return text if isinstance(text, str) else None


def _http_response(resp: Any) -> Dict[str, Any]:
    """Report fields of an httpx / httpx2 / requests response. The body of a 1xx-3xx is not
    read (core classifies those by status alone); an error body is read as :func:`_body_text`
    says."""
    headers = _headers(getattr(resp, "headers", None))
    status = getattr(resp, "status_code", None)
    if not (isinstance(status, int) and 0 <= status <= 0xFFFF):
        status = None
    body = None
    if status is None or status >= 400:
        body = _body_from_text(_body_text(resp, headers), headers.get("content-type", ""))
    return {"status": status, "headers": headers, "body": body, "network_error": None}


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
    JSON, else as text (bounded); a 1xx-3xx body is not read, and a streamed error body
    is read only when it declares at most ``MAX_READ_BYTES``. Returns None for anything
    else, such as a ``KeyError`` raised by user code: that is no outcome of the provider.
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


def _returned_info(value: object) -> Dict[str, Any]:
    """What a value ``fn`` returned reports: an httpx / httpx2 / requests ``Response`` as
    itself (a returned 429 is a 429), anything else as a success."""
    for mod in ("httpx", "httpx2", "requests"):
        if _isinstance(value, mod, "Response"):
            return _http_response(value)
    return dict(_SUCCESS)


_SUCCESS: Mapping[str, Any] = {"status": 200, "headers": {}, "body": None, "network_error": None}




# --------------------------------------------------------------------------- the call driver

# Actions after which the call goes on (``pool.lease(after=lease)`` follows them).
_GOES_ON = ("send", "sleep", "refresh")
_NOTHING: Any = object()


def _no_credential(action: Action, pool: str, why: str = "") -> NoCredentialError:
    """``NoCredentialError`` carrying the action that left nothing to send with."""
    text = f"no credential to use in pool {pool!r}: {action.get('type')}"
    reason = why or action.get("reason")
    text += f" ({reason})" if reason else ""
    text += f" until {action['until']}" if "until" in action else ""
    return NoCredentialError(text, "no_credential", action=action)


class Lease:
    """One send's credential: ``pool``, ``model``, ``entry_id``, ``lease_id``, ``auth_type``,
    ``base_url``, ``access_token`` (and, for a refresh callable, ``refresh_token``,
    ``expires_at``, ``generation``). ``repr()`` and ``str()`` never show a secret.

    In ``pool.lease()``, :meth:`report` hands the send's response to core; afterwards
    :attr:`action` is the call's next action and :attr:`again` whether the call goes on.
    """

    __slots__ = (
        "pool", "model", "session", "call_id", "entry_id", "lease_id", "auth_type", "base_url",
        "access_token", "refresh_token", "expires_at", "generation", "reason", "action",
        "report_error", "_context",
    )  # fmt: skip

    def __init__(
        self,
        action: Mapping[str, Any],
        credential: Mapping[str, Any],
        session: Optional[str] = None,
        context: Optional[LeaseContext] = None,
    ) -> None:
        #: Pool the send goes to (after a fallback: the fallback pool).
        self.pool: str = action["pool"]
        #: Model to request (a fallback's model when it named one).
        self.model: Optional[str] = action.get("model")
        self.session: Optional[str] = session
        self.call_id: Optional[int] = action.get("call_id")
        self.entry_id: str = action["entry_id"]
        self.lease_id: int = action["lease_id"]
        #: ``api_key`` or ``oauth``: how to present the token (Bearer or ``x-api-key``).
        self.auth_type: Optional[str] = action.get("auth_type")
        self.base_url: Optional[str] = credential.get("base_url", action.get("base_url"))
        self.access_token: Optional[str] = credential.get("access_token", action.get("access_token"))
        self.refresh_token: Optional[str] = credential.get("refresh_token")
        self.expires_at: Optional[int] = credential.get("expires_at")
        self.generation: Optional[int] = action.get("generation", credential.get("generation"))
        #: Why this send (a retry's or rotation's cause, ``refreshed``, ...); None at first.
        self.reason: Optional[str] = action.get("reason")
        #: The call's next action once this send is reported; None until then.
        self.action: Optional[Action] = None
        #: A credpool error raised while reporting on exit from a failing block (the
        #: block's own exception propagates instead).
        self.report_error: Optional[CredpoolError] = None
        self._context = context

    def __repr__(self) -> str:
        state = self.action["type"] if self.action is not None else "open"
        return (
            f"Lease(pool={self.pool!r}, model={self.model!r}, entry_id={self.entry_id!r}, "
            f"lease_id={self.lease_id}, auth_type={self.auth_type!r}, "
            f"base_url={self.base_url!r}, state={state!r})"
        )

    @property
    def reported(self) -> bool:
        """Whether this send was reported."""
        return self.action is not None

    @property
    def again(self) -> bool:
        """Whether the call goes on (its next action is a ``send``, ``sleep`` or ``refresh``):
        follow it with ``pool.lease(after=lease)``."""
        return self.action is not None and self.action["type"] in _GOES_ON

    def report(self, response: object, *, delivered: bool = False) -> Action:
        """Reports what the send produced: a response or exception :func:`response_info`
        understands (a returned 429 is a 429). ``delivered``: bytes of a stream already
        reached the caller, so a failure ends the call. Returns the call's next action."""
        if self._context is None:
            raise TypeError("call() reports what fn returns or raises: report() is for pool.lease()")
        if self.action is not None:
            raise ValueError(f"lease {self.lease_id} was already reported")
        info = response_info(response)
        if info is None:
            raise TypeError(f"cannot report a {type(response).__name__}: not a provider response")
        self.action = self._context._report(info, delivered)
        return self.action

    def close(self) -> None:
        """Ends the call without following it (``call_cancel``: its lease released, nothing
        marked); does nothing once the call is over."""
        if self._context is not None:
            self._context._cancel()


class _Call:
    """The host side of one call, shared by ``call()``, ``lease()`` (and an async twin): the
    input answering each action, the last send's outcome, and the end. No rule of its own."""

    __slots__ = ("pool", "start", "session", "refresh", "call_id", "action", "outcome", "thrown")

    def __init__(
        self,
        pool: CredentialPool,
        model: Optional[str],
        session: Optional[str],
        budgets: Mapping[str, Optional[int]],
        refresh: Optional[RefreshFn],
    ) -> None:
        self.pool = pool
        start = {"type": "call_start", "pool": pool.name, "model": model, "session": session, **budgets}
        self.start: Dict[str, Any] = {k: v for k, v in start.items() if v is not None}
        self.session = session
        self.refresh = refresh if refresh is not None else pool.refresh
        self.call_id: Optional[int] = None
        self.action: Optional[Action] = None
        self.outcome: Any = _NOTHING  # what the last send returned or raised
        self.thrown = False  # whether it raised

    @property
    def open(self) -> bool:
        """Whether the call was started and has not ended."""
        return self.action is not None and self.action["type"] in _GOES_ON

    def took(self, action: Action) -> Action:
        """Records the action core answered."""
        self.action, self.call_id = action, action.get("call_id", self.call_id)
        return action

    def returned(self, value: object) -> Decision:
        """The ``call_report`` of a send that returned ``value``."""
        return self.sent(value, _returned_info(value), False)

    def raised(self, exc: BaseException) -> Optional[Decision]:
        """The ``call_report`` of a send that raised ``exc``; None when ``exc`` is no provider
        outcome (the call is then cancelled and ``exc`` propagates)."""
        info = response_info(exc)
        return None if info is None else self.sent(exc, info, True)

    def sent(self, outcome: object, info: Mapping[str, Any], thrown: bool, delivered: bool = False) -> Decision:
        """The ``call_report`` of a send that returned or raised ``outcome``, seen as ``info``."""
        self.outcome, self.thrown = outcome, thrown
        response = {k: v for k, v in info.items() if v is not None and k in ("status", "headers", "body", "network_error")}
        report = {"type": "call_report", "call_id": self.call_id, "response": response}
        return {**report, "delivered": True} if delivered else report

    def resume(self) -> Decision:
        return {"type": "call_resume", "call_id": self.call_id}

    def refreshed(self, result: Mapping[str, Any]) -> Decision:
        return {"type": "call_refreshed", "call_id": self.call_id, "result": dict(result)}

    def cancel(self) -> Decision:
        return {"type": "call_cancel", "call_id": self.call_id}

    def delay(self, action: Action) -> float:
        """Seconds until a ``sleep`` action's ``until``."""
        return max(int(action["until"]) - self.pool._now_ms(), 0) / 1000

    def target(self, action: Action, credential: Mapping[str, Any]) -> Lease:
        """What the refresh callable gets for a ``refresh`` action."""
        return Lease(action, credential, self.session)

    def refresher(self, action: Action) -> RefreshFn:
        if self.refresh is None:
            raise _no_credential(action, action["pool"], "no refresh callable")
        return self.refresh

    def end(self, action: Action) -> Any:
        """``done`` or ``give_up``: what the last send returned, or its error raised again;
        :class:`~credpool.NoCredentialError` when nothing was sent."""
        if self.outcome is _NOTHING:
            raise _no_credential(action, self.pool.name)
        if self.thrown:
            raise self.outcome
        return self.outcome


class LeaseContext:
    """``with pool.lease(...) as lease:`` — one send of a call.

    On enter: starts a call (or, with ``after=``, goes on with that lease's call), sleeps
    and refreshes as core says, and yields the :class:`Lease` of the next ``send``; a
    ``give_up`` raises :class:`~credpool.NoCredentialError` carrying ``.action``.

    On exit, unless the block called ``lease.report(...)``: a clean exit reports success;
    a provider exception (see :func:`response_info`) is reported and propagates. Any other
    exception cancels the call (nothing marked) and propagates.
    """

    def __init__(self, owner: CredentialPool, call: _Call, after: Optional[Action], sleep: Sleep) -> None:
        self._owner = owner
        self._call = call
        self._after = after  # the action to follow; None: start the call
        self._sleep = sleep
        self.lease: Optional[Lease] = None

    def __enter__(self) -> Lease:
        owner, call = self._owner, self._call
        with owner._cancelling(call):
            action = owner._step(call, call.start) if self._after is None else self._after
            action = owner._advance(call, action, self._sleep)
        if action["type"] != "send":
            raise _no_credential(action, owner.name)
        self.lease = Lease(action, {}, call.session, self)
        return self.lease

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        lease = self.lease
        info = _SUCCESS if exc is None else response_info(exc)
        if lease is None or (lease.reported and info is not None):
            return
        if info is None:
            self._cancel()
            return
        try:
            lease.action = self._report(info, False)
        except CredpoolError as error:
            if exc is None:
                raise
            lease.report_error = error  # never hide the block's own exception

    def _report(self, info: Mapping[str, Any], delivered: bool) -> Action:
        with self._owner._cancelling(self._call):
            return self._owner._step(self._call, self._call.sent(None, info, False, delivered))

    def _cancel(self) -> None:
        self._owner._cancel(self._call)


class CredentialPool:
    """A registry (or a :class:`~credpool.FileStore`) bound to one pool.

    ``refresh`` (optional) performs OAuth refreshes when core asks for one; without it a
    ``refresh`` action cancels the call and raises :class:`~credpool.NoCredentialError`.
    ``clock`` returns epoch ms and is passed as ``now`` to every input (default: the
    registry reads the wall clock).
    """

    def __init__(
        self,
        registry: Registry,
        pool: str,
        *,
        refresh: Optional[RefreshFn] = None,
        clock: Optional[Clock] = None,
    ) -> None:
        self.registry = registry
        self.name = pool
        self.refresh = refresh
        self.clock = clock

    def __repr__(self) -> str:
        return f"CredentialPool({self.name!r})"

    def _now(self) -> Optional[int]:
        return self.clock() if self.clock is not None else None

    def _now_ms(self) -> int:
        now = self._now()
        return now if now is not None else time.time_ns() // 1_000_000

    # -- raw calls (no call driver)

    def acquire(self, model: Optional[str] = None, session: Optional[str] = None) -> Decision:
        """``Registry.acquire`` on this pool; returns the decision."""
        return self.registry.acquire(self.name, model=model, session=session, now=self._now())

    def report(self, lease_id: int, response_or_exception: object, model: Optional[str] = None) -> Decision:
        """Reports a provider response or exception against an acquired ``lease_id``;
        returns the decision. Raises ``TypeError`` for an object :func:`response_info`
        does not understand."""
        info = response_info(response_or_exception)
        if info is None:
            raise TypeError(f"cannot report a {type(response_or_exception).__name__}: not a provider response")
        return self.registry.report(
            self.name, lease_id, status=info["status"], headers=info["headers"] or None, body=info["body"],
            model=model, network_error=info["network_error"], now=self._now(),
        )  # fmt: skip

    def release(self, lease_id: int) -> Decision:
        """Closes an acquired ``lease_id`` without an outcome (nothing marked)."""
        return self.registry.release(self.name, lease_id, now=self._now())

    # -- the call driver

    def _step(self, call: _Call, given: Mapping[str, Any]) -> Action:
        """Hands one input to core; its answer, recorded on the call."""
        return call.took(self.registry.handle(given, now=self._now()))

    def _cancel(self, call: _Call) -> None:
        """Cancels ``call`` if it is open; an error doing so is dropped (an exception of the
        caller's is propagating)."""
        if call.open:
            try:
                self._step(call, call.cancel())
            except CredpoolError:
                pass

    @contextlib.contextmanager
    def _cancelling(self, call: _Call) -> Iterator[None]:
        """Cancels ``call`` when the block raises (then the block's exception propagates)."""
        try:
            yield
        except BaseException:
            self._cancel(call)
            raise

    def _advance(self, call: _Call, action: Action, sleep: Sleep) -> Action:
        """Performs ``sleep`` and ``refresh`` actions until the call's next ``send`` or its end."""
        while action["type"] in ("sleep", "refresh"):
            if action["type"] == "sleep":
                sleep(call.delay(action))
                action = self._step(call, call.resume())
            else:
                action = self._step(call, self._refresh(call, action))
        return action

    def _refresh(self, call: _Call, action: Action) -> Decision:
        """Runs the refresh callable for a ``refresh`` action; the input reporting it."""
        refresh = call.refresher(action)
        credential = self.registry.credential(action["pool"], action["entry_id"], now=self._now())
        return call.refreshed(refresh(call.target(action, credential)))

    def _start(
        self, model: Optional[str], session: Optional[str], refresh: Optional[RefreshFn], **budgets: Optional[int]
    ) -> _Call:
        return _Call(self, model, session, budgets, refresh)

    def lease(
        self,
        model: Optional[str] = None,
        session: Optional[str] = None,
        *,
        after: Optional[Lease] = None,
        max_sends: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        max_total_wait_ms: Optional[int] = None,
        max_hops: Optional[int] = None,
        sleep: Sleep = time.sleep,
        refresh: Optional[RefreshFn] = None,
    ) -> LeaseContext:
        """One send of a call, as a context manager (see :class:`LeaseContext`).

        Without ``after`` it starts a call (the budgets as in :meth:`call`); with ``after``
        (a reported lease whose call goes on, ``after.again``) it follows that call's next
        action. A caller loops::

            lease = None
            while lease is None or lease.again:
                with pool.lease(after=lease) as lease:
                    lease.report(httpx.post(url, headers=...))  # a returned 429 is a 429
        """
        if after is None:
            call = self._start(model, session, refresh, max_sends=max_sends, max_wait_ms=max_wait_ms,
                               max_total_wait_ms=max_total_wait_ms, max_hops=max_hops)  # fmt: skip
            return LeaseContext(self, call, None, sleep)
        if after._context is None or after.action is None or not after.again:
            raise ValueError("after= needs a lease of pool.lease() whose call goes on (lease.again)")
        return LeaseContext(after._context._owner, after._context._call, after.action, sleep)

    def call(
        self,
        fn: Callable[[Lease], Any],
        model: Optional[str] = None,
        session: Optional[str] = None,
        *,
        max_sends: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        max_total_wait_ms: Optional[int] = None,
        max_hops: Optional[int] = None,
        sleep: Sleep = time.sleep,
        refresh: Optional[RefreshFn] = None,
    ) -> Any:
        """One call: ``fn(lease)`` for each ``send`` core asks for, until ``done`` or ``give_up``.

        What ``fn`` returns or raises is reported: an httpx / requests ``Response`` as
        itself (a returned 429 is a 429), a provider exception (see :func:`response_info`)
        as its outcome, any other value as a success. ``sleep`` actions are slept (``sleep``
        gets seconds), ``refresh`` actions run ``refresh`` (default: the pool's). Budgets left
        None take core's defaults (SPEC §7).

        ``done`` returns what ``fn`` returned. ``give_up`` re-raises the last send's error,
        or returns its response, or, when nothing was sent, raises
        :class:`~credpool.NoCredentialError` carrying ``.action``. Any other exception of
        ``fn`` (or ``KeyboardInterrupt``) cancels the call and propagates.
        """
        call = self._start(model, session, refresh, max_sends=max_sends, max_wait_ms=max_wait_ms,
                           max_total_wait_ms=max_total_wait_ms, max_hops=max_hops)  # fmt: skip
        with self._cancelling(call):
            action = self._advance(call, self._step(call, call.start), sleep)
            while action["type"] == "send":
                try:
                    value = fn(Lease(action, {}, session))
                except Exception as exc:
                    report = call.raised(exc)
                    if report is None:
                        raise
                else:
                    report = call.returned(value)
                action = self._advance(call, self._step(call, report), sleep)
        return call.end(action)


def credential_pool(
    registry: Registry,
    pool: str,
    *,
    refresh: Optional[RefreshFn] = None,
    clock: Optional[Clock] = None,
) -> CredentialPool:
    """``CredentialPool(registry, pool, ...)``: a registry bound to one pool."""
    return CredentialPool(registry, pool, refresh=refresh, clock=clock)
