"""Idiomatic helpers over core's call driver (SPEC §7): ``pool.call(fn)`` and ``pool.lease()``.

Nothing here takes a decision: core's call driver answers one action at a time (``send``,
``sleep``, ``refresh``, ``done``, ``give_up``) and these helpers only perform it and report
what it produced, through ``handle`` (on a ``Registry`` or a ``Store``).

* What a send produced is read by :func:`~credpool._responses.response_info` (its own
  module: the adapters for httpx, httpx2, openai, anthropic and requests objects).
* :class:`CredentialPool` binds a registry to one pool. ``pool.call(fn)`` runs one call:
  ``fn(lease)`` for every ``send``, until ``done`` or ``give_up``. ``pool.lease()`` is a
  context manager: one ``with`` block is one send of a call. ``await pool.acall(fn)`` and
  ``async with pool.alease()`` are their asyncio twins.

The decision loop is written once, as a generator of steps (``_Call.advance``,
``_Call.steps``) yielding what to do next: hand core an input, sleep, refresh, send.
``CredentialPool._run`` performs the steps in the calling thread, ``_arun`` on an event loop
(a store's blocking IO and refreshes off it): only the awaits differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from concurrent.futures import Executor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Mapping, Optional, Tuple, Type, TypedDict

from credpool import CredpoolError, NoCredentialError
from credpool._credpool import Registry
from credpool._oauth import builtin_refresh
from credpool._responses import _SUCCESS, _returned_info, response_info

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "Budgets",
    "CredentialPool",
    "AsyncLeaseContext",
    "Lease",
    "LeaseContext",
    "response_info",
]

Decision = Dict[str, Any]
"""An output of the registry (a decision, an action, ...): a dict with ``"type"``."""
Action = Dict[str, Any]
"""An action of the call driver: ``send``, ``sleep``, ``refresh``, ``done`` or ``give_up``."""
Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""
ProbeFn = Callable[["Lease"], Any]
"""Asks the provider whether a key benched by a rate or usage limit for long is usable again
(e.g. Codex's usage endpoint): gets the :class:`Lease` of that key, returns true to reopen it
(or an awaitable of that, in the async helpers)."""
RefreshFn = Callable[["Lease"], Mapping[str, Any]]
"""Refreshes an OAuth token: gets the :class:`Lease` (its ``refresh_token`` included) and
returns ``{"type": "refreshed", "access_token", "refresh_token"?, "expires_at"?}``,
``{"type": "failed", "terminal": bool}`` or ``{"type": "adopted"}``."""
Sleep = Callable[[float], Any]
"""Sleeps for a number of seconds (``time.sleep``; in the async helpers ``asyncio.sleep``, or
any function returning an awaitable or None)."""


class Budgets(TypedDict, total=False):
    """A call's budgets (SPEC §7), inputs of ``call_start``: one left out or None takes
    core's default (``max_sends``: the usable entries plus 3; ``max_wait_ms``: 60 s;
    ``max_total_wait_ms``: 120 s; ``max_hops``: the fallback chain's length). ``spread``:
    concurrent calls (parallel sub-agents) each take a usable key with the fewest open
    leases instead of the strategy's first."""

    max_sends: Optional[int]
    max_wait_ms: Optional[int]
    max_total_wait_ms: Optional[int]
    max_hops: Optional[int]
    spread: Optional[bool]


# --------------------------------------------------------------------------- the call driver

_GOES_ON = ("send", "sleep", "refresh", "probe")  # the actions after which a call goes on
_NOTHING: Any = object()

# A call's steps are (kind, argument) pairs its runner performs, sending back the result:
#   ("handle", input)    hand this input to core          -> core's answer
#   ("sleep", seconds)   sleep                            -> None
#   ("refresh", action)  perform this refresh action      -> the input reporting it
#   ("probe", action)    perform this probe action        -> the input reporting it
#   ("send", action)     perform this send action         -> the call_report input, or _DEFERRED
# ``_run`` performs them in the calling thread, ``_arun`` on an event loop (``_perform`` picks):
# the one difference of sync and async.
#: A send whose report comes later (a 2xx whose body streams to the caller): the steps end
#: at the send, and the call stays open until the body ends.
_DEFERRED: Any = object()

Step = Tuple[str, Any]
Steps = Generator[Step, Any, Action]



_END: Any = object()


def _next(steps: Steps, value: Any) -> Step:
    """The step ``steps`` yields once sent ``value``; at their end ``(_END, the last action)``."""
    try:
        return steps.send(value)
    except StopIteration as end:
        return _END, end.value


def _no_credential(action: Action, pool: str, why: str = "") -> NoCredentialError:
    """``NoCredentialError`` carrying the action that left nothing to send with."""
    reason = why or action.get("reason")
    text = f"no credential to use in pool {pool!r}: {action.get('type')}" + (f" ({reason})" if reason else "")
    text += f" until {action['until']}" if "until" in action else ""
    return NoCredentialError(text, "no_credential", action=action)


def _as_is(result: Any) -> Any:
    return result


async def _awaited(value: Any) -> Any:
    return await value


def _on_loop(loop: asyncio.AbstractEventLoop) -> Callable[[Any], Any]:
    """For a worker thread: a refresh callable's result, an awaitable run to its end on ``loop``."""

    def resolve(result: Any) -> Any:
        if inspect.isawaitable(result):
            return asyncio.run_coroutine_threadsafe(_awaited(result), loop).result()
        return result

    return resolve


class Lease:
    """One send's credential: ``pool`` (after a fallback, the fallback's), ``model``, ``entry_id``,
    ``lease_id`` (None for a probe callable), ``auth_type`` (``api_key``/``oauth``: the host picks Bearer or ``x-api-key``),
    ``base_url``, ``access_token``, ``reason`` (why this send: a retry's or rotation's cause,
    ``refreshed``...); for a refresh callable also ``refresh_token``, ``expires_at``,
    ``generation``. ``repr()``/``str()`` show no secret. In ``pool.lease()``, ``action`` is the
    call's next action once :meth:`report` ran (or the block exited); ``report_error`` a
    credpool error raised reporting on exit from a failing block (whose exception propagates).
    In ``pool.alease()``, :meth:`areport` reports.
    """

    __slots__ = ("pool", "model", "session", "call_id", "entry_id", "lease_id", "auth_type", "base_url",
                 "access_token", "refresh_token", "expires_at", "generation", "reason", "action",
                 "report_error", "_context")

    def __init__(
        self, action: Mapping[str, Any], credential: Mapping[str, Any], session: Optional[str] = None,
        context: Optional[LeaseContext] = None,
    ) -> None:
        self.pool: str = action["pool"]
        self.model: Optional[str] = action.get("model")
        self.session = session
        self.call_id: Optional[int] = action.get("call_id")
        self.entry_id: str = action["entry_id"]
        self.lease_id: Optional[int] = action.get("lease_id")
        self.auth_type: Optional[str] = action.get("auth_type")
        self.base_url: Optional[str] = credential.get("base_url", action.get("base_url"))
        self.access_token: Optional[str] = credential.get("access_token", action.get("access_token"))
        self.refresh_token: Optional[str] = credential.get("refresh_token")
        self.expires_at: Optional[int] = credential.get("expires_at")
        self.generation: Optional[int] = action.get("generation", credential.get("generation"))
        self.reason: Optional[str] = action.get("reason")
        self.action: Optional[Action] = None
        self.report_error: Optional[CredpoolError] = None
        self._context = context

    def __repr__(self) -> str:
        state = self.action["type"] if self.action is not None else "open"
        return (f"Lease(pool={self.pool!r}, model={self.model!r}, entry_id={self.entry_id!r}, lease_id="
                f"{self.lease_id}, auth_type={self.auth_type!r}, base_url={self.base_url!r}, state={state!r})")

    @property
    def again(self) -> bool:
        """Whether the call goes on (``send``, ``sleep``, ``refresh``): ``pool.lease(after=lease)``."""
        return self.action is not None and self.action["type"] in _GOES_ON

    def _info(self, response: object, asynchronous: bool) -> Tuple[LeaseContext, Dict[str, Any]]:
        if self._context is None:
            raise TypeError("call() reports what fn returns or raises: report() is for pool.lease()")
        if isinstance(self._context, AsyncLeaseContext) != asynchronous:
            raise TypeError("a lease of pool.alease() reports with `await lease.areport(response)`, "
                            "one of pool.lease() with `lease.report(response)`")  # fmt: skip
        if self.action is not None:
            raise ValueError(f"lease {self.lease_id} was already reported")
        info = response_info(response)
        if info is None:
            raise TypeError(f"cannot report a {type(response).__name__}: not a provider response")
        return self._context, info

    def report(self, response: object, *, delivered: bool = False) -> Action:
        """Reports a response or exception :func:`response_info` understands (a returned 429 is
        a 429; ``delivered``: a stream's bytes reached the caller). Returns the next action."""
        context, info = self._info(response, False)
        self.action = context._report(info, delivered)
        return self.action

    async def areport(self, response: object, *, delivered: bool = False) -> Action:
        """:meth:`report`, awaited (a store's IO runs off the event loop)."""
        context, info = self._info(response, True)
        self.action = await context._report(info, delivered)
        return self.action

    def close(self) -> None:
        """Cancels the call if it goes on (its lease released, nothing marked)."""
        if self._context is not None:
            self._context._owner._cancel(self._context._call)


class _Call:
    """One call's host side, shared by ``call()``, ``lease()``, their async twins and the
    transports: the input answering each action, the last send's outcome, the end, and the
    loop itself as steps (:meth:`advance`, :meth:`steps`). No rule of its own."""

    __slots__ = ("pool", "start", "session", "refresh", "probe", "call_id", "action", "outcome", "thrown")

    def __init__(self, pool: CredentialPool, model: Optional[str], session: Optional[str],
                 refresh: Optional[RefreshFn], budgets: Budgets, **route: Any) -> None:
        """``route``: what a transport knows of its request (``api``, ``url``, ``request_id``,
        ``client_retry``), as ``call_start`` takes them."""
        probe = route.pop("probe", None) or pool.probe
        refresh = refresh if refresh is not None else pool.refresh
        # Without a refresh callable, core's built-in refreshers serve the providers that have one.
        can_refresh = None if refresh is not None else "built_in"
        start = {"type": "call_start", "pool": pool.name, "model": model, "session": session, **budgets, **route,
                 "probe": probe is not None or None, "can_refresh": can_refresh}
        refresh = refresh if refresh is not None else builtin_refresh(pool.registry, pool._now)
        self.start: Dict[str, Any] = {k: v for k, v in start.items() if v is not None}
        self.pool, self.session = pool, session
        self.refresh, self.probe = refresh, probe
        self.call_id: Optional[int] = None
        self.action: Optional[Action] = None
        self.outcome: Any = _NOTHING  # what the last send returned or raised
        self.thrown = False  # whether it raised

    @property
    def open(self) -> bool:
        return self.action is not None and self.action["type"] in _GOES_ON

    def took(self, action: Action) -> Action:
        self.action, self.call_id = action, action.get("call_id", self.call_id)
        return action

    def advance(self, action: Optional[Action] = None) -> Steps:
        """Steps from the call's start (or from ``action``, core's last answer) through the
        ``sleep``, ``refresh`` and ``probe`` actions core asks for, to the next ``send`` or the end."""
        if action is None:
            action = self.took((yield "handle", self.start))
        while action["type"] in ("sleep", "refresh", "probe"):
            if action["type"] == "sleep":
                yield "sleep", self.delay(action)
                given = self.resume()
            else:
                given = yield action["type"], action
            action = self.took((yield "handle", given))
        return action

    def step(self, given: Mapping[str, Any]) -> Steps:
        """One input to core, as a step; its answer."""
        return self.took((yield "handle", given))

    def steps(self) -> Steps:
        """Steps of a whole call: a ``send`` step for each send core asks for, until ``done`` or
        ``give_up`` (or a send whose report is ``_DEFERRED``: then that send)."""
        action = yield from self.advance()
        while action["type"] == "send":
            report = yield "send", action
            if report is _DEFERRED:
                break
            action = yield from self.advance(self.took((yield "handle", report)))
        return action

    def failed(self, exc: BaseException) -> Decision:
        """The report of a send that raised ``exc``; ``exc`` raised again when it is no
        provider outcome (then the call is cancelled)."""
        info = response_info(exc)
        if info is None:
            raise exc
        return self.sent(exc, info, True)

    def sent(self, outcome: object, info: Mapping[str, Any], thrown: bool, delivered: bool = False) -> Decision:
        self.outcome, self.thrown = outcome, thrown
        response = {k: v for k, v in info.items() if v is not None}
        report = {"type": "call_report", "call_id": self.call_id, "response": response}
        return {**report, "delivered": True} if delivered else report

    def resume(self) -> Decision:
        return {"type": "call_resume", "call_id": self.call_id}

    def refreshed(self, result: Mapping[str, Any]) -> Decision:
        return {"type": "call_refreshed", "call_id": self.call_id, "result": dict(result)}

    def delay(self, action: Action) -> float:
        """Seconds until a ``sleep`` action's ``until``."""
        now = self.pool._now()
        return max(int(action["until"]) - (time.time_ns() // 1_000_000 if now is None else now), 0) / 1000

    def target(self, action: Action, credential: Mapping[str, Any]) -> Lease:
        """What the refresh callable gets for a ``refresh`` action."""
        return Lease(action, credential, self.session)

    def refresher(self, action: Action) -> RefreshFn:
        if self.refresh is None:
            raise _no_credential(action, action["pool"], "no refresh callable")
        return self.refresh

    def end(self, action: Action) -> Any:
        """``done``/``give_up``: the last send's value, or its error raised again, or NoCredentialError."""
        if self.outcome is _NOTHING:
            raise _no_credential(action, self.pool.name)
        if self.thrown:
            raise self.outcome
        return self.outcome


class LeaseContext:
    """``with pool.lease(...) as lease:`` — one send of a call. Enter: starts the call (or goes
    on with ``after``'s), sleeps and refreshes as core says, and yields the next ``send``'s
    :class:`Lease` (a ``give_up`` raises :class:`~credpool.NoCredentialError` with ``.action``).
    Exit, unless the block called ``lease.report(...)``: a clean exit reports success; a
    provider exception (:func:`response_info`) is reported and propagates; any other exception
    (or ``KeyboardInterrupt``, reported or not) cancels the call and propagates.
    """

    def __init__(self, owner: CredentialPool, call: _Call, after: Optional[Action], sleep: Sleep) -> None:
        self._owner, self._call, self._after, self._sleep = owner, call, after, sleep
        self.lease: Optional[Lease] = None

    def _opened(self, action: Action) -> Lease:
        if action["type"] != "send":
            raise _no_credential(action, self._owner.name)
        self.lease = Lease(action, {}, self._call.session, self)
        return self.lease

    def _exiting(self, exc: Optional[BaseException]) -> Any:
        """What leaving the block reports: None (nothing), ``_NOTHING`` (cancel), or its info."""
        lease = self.lease
        info = _SUCCESS if exc is None else response_info(exc)
        if lease is None or (lease.action is not None and info is not None):
            return None
        return _NOTHING if info is None else info

    def _keep(self, error: CredpoolError, exc: Optional[BaseException]) -> None:
        if exc is None:
            raise error
        assert self.lease is not None
        self.lease.report_error = error  # never hide the block's own exception

    def _perform(self, steps: Steps) -> Any:
        """The call's ``steps`` performed: their last action (the async context: a coroutine of it)."""
        return self._owner._perform(self._call, steps, self._sleep, asynchronous=isinstance(self, AsyncLeaseContext))

    def __enter__(self) -> Lease:
        return self._opened(self._perform(self._call.advance(self._after)))

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        info = self._exiting(exc)
        if info is _NOTHING:
            self._owner._cancel(self._call)
        elif info is not None:
            assert self.lease is not None
            try:
                self.lease.action = self._report(info, False)
            except CredpoolError as error:
                self._keep(error, exc)

    def _report(self, info: Mapping[str, Any], delivered: bool) -> Any:
        """Reports the block's send: the call's next action (the async context: a coroutine of it)."""
        return self._perform(self._call.step(self._call.sent(None, info, False, delivered)))


class AsyncLeaseContext(LeaseContext):
    """``async with pool.alease(...) as lease:`` — :class:`LeaseContext` on an event loop
    (sleeps awaited, a store's IO and the refresh callable run off the loop); the block
    reports with ``await lease.areport(response)``."""

    async def __aenter__(self) -> Lease:
        return self._opened(await self._perform(self._call.advance(self._after)))

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        info = self._exiting(exc)
        if info is _NOTHING:
            await self._owner._acancel(self._call)
        elif info is not None:
            assert self.lease is not None
            try:
                self.lease.action = await self._report(info, False)
            except CredpoolError as error:
                self._keep(error, exc)

    def __enter__(self) -> Lease:
        raise TypeError("pool.alease() is entered with `async with`")


class CredentialPool:
    """A registry (or a :class:`~credpool.Store`) bound to one pool (``registry`` takes raw
    inputs). ``refresh`` performs OAuth refreshes when core asks for one. Without it, calls
    start with ``can_refresh="built_in"``: entries of a provider with a built-in refresher
    (:func:`~credpool.oauth_providers`: ``anthropic``, ``openai-codex``...) refresh by core's
    request and answer, over HTTP from the standard library; for any other OAuth entry core
    passes over an expiring token for the next usable key and marks and rotates on a 401,
    never asking for a refresh;
    ``clock`` returns epoch ms, passed as ``now`` to every input (default: the wall clock).
    ``probe`` (:data:`ProbeFn`), given, is asked before a call waits for or gives up on a key
    benched by a rate or usage limit for over the policy's ``quota_probe_interval_ms``
    (5 min; at most once per key per interval); true reopens the key.
    """

    #: Whether ``registry``'s methods may block (a store's lock waits and IO): the async
    #: helpers then run them on :meth:`_executor`'s thread, off the event loop.
    _blocking = False

    def __init__(
        self, registry: Registry, pool: str, *, refresh: Optional[RefreshFn] = None, clock: Optional[Clock] = None,
        probe: Optional[ProbeFn] = None,
    ) -> None:
        self.registry, self.name, self.refresh, self.clock, self.probe = registry, pool, refresh, clock, probe

    def __repr__(self) -> str:
        return f"CredentialPool({self.name!r})"

    def _now(self) -> Optional[int]:
        return self.clock() if self.clock is not None else None

    def _handle(self, given: Mapping[str, Any]) -> Action:
        return self.registry.handle(given, now=self._now())

    def _cancel(self, call: _Call) -> None:
        """Cancels ``call`` if open; an error doing so is dropped (the caller's propagates)."""
        if call.open:
            with contextlib.suppress(CredpoolError):
                call.took(self._handle({"type": "call_cancel", "call_id": call.call_id}))

    def _refresh(self, call: _Call, action: Action, resolve: Callable[[Any], Any] = _as_is) -> Decision:
        """Runs the refresh callable for a ``refresh`` action (``resolve``: its result, awaited
        when it is a coroutine run from a worker thread); the input reporting it."""
        refresh = call.refresher(action)
        credential = self.registry.credential(action["pool"], action["entry_id"], now=self._now())
        return call.refreshed(resolve(refresh(call.target(action, credential))))

    def _probe(self, call: _Call, action: Action, resolve: Callable[[Any], Any] = _as_is) -> Decision:
        """Runs the probe callable for a ``probe`` action; the input reporting what it found."""
        assert call.probe is not None  # core asks only calls started with a probe callable
        restored = resolve(call.probe(Lease(action, {}, call.session)))
        return {"type": "call_probed", "call_id": call.call_id, "restored": bool(restored)}

    def _perform(self, call: _Call, steps: Steps, sleep: Sleep, send: Optional[Callable[[Action], Any]] = None,
                 *, asynchronous: bool = False) -> Any:  # fmt: skip
        """Performs a call's ``steps`` (``send`` performs its sends): in this thread, their last
        action; ``asynchronous``, a coroutine of it, for an event loop."""
        handle, refresh = (self._ahandle, self._arefresh) if asynchronous else (self._handle, self._refresh)
        probe = self._aprobe if asynchronous else self._probe
        ops = {"handle": handle, "sleep": sleep, "refresh": functools.partial(refresh, call),
               "probe": functools.partial(probe, call), "send": send}  # fmt: skip
        return (self._arun if asynchronous else self._run)(call, steps, ops)

    def _run(self, call: _Call, steps: Steps, ops: Mapping[str, Any]) -> Action:
        """Performs a call's steps in this thread; an exception cancels the call and propagates."""
        try:
            kind, arg = _next(steps, None)
            while kind is not _END:
                kind, arg = _next(steps, ops[kind](arg))
            return arg  # type: ignore[no-any-return]
        except BaseException:
            self._cancel(call)
            raise

    # ------------------------------------------------------------------ async twins

    def _executor(self) -> Optional[Executor]:
        """Where blocking work runs off the event loop (None: the loop's default executor)."""
        return None

    async def _offload(self, fn: Callable[..., Any], *args: Any, always: bool = False) -> Any:
        """``fn(*args)``, on :meth:`_executor` when the registry may block (or ``always``)."""
        if not (self._blocking or always):
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor(), fn, *args)

    async def _ahandle(self, given: Mapping[str, Any]) -> Action:
        return await self._offload(self._handle, given)  # type: ignore[no-any-return]

    async def _arefresh(self, call: _Call, action: Action) -> Decision:
        """:meth:`_refresh` off the event loop (the refresh callable may block, or hold the
        store's refresh lock); a coroutine it returns runs on the loop."""
        resolve = _on_loop(asyncio.get_running_loop())
        return await self._offload(self._refresh, call, action, resolve, always=True)  # type: ignore[no-any-return]

    async def _aprobe(self, call: _Call, action: Action) -> Decision:
        """:meth:`_probe` off the event loop; a coroutine it returns runs on the loop."""
        resolve = _on_loop(asyncio.get_running_loop())
        return await self._offload(self._probe, call, action, resolve, always=True)  # type: ignore[no-any-return]

    async def _acancel(self, call: _Call) -> None:
        await self._offload(self._cancel, call)

    async def _arun(self, call: _Call, steps: Steps, ops: Mapping[str, Any]) -> Action:
        """:meth:`_run` on an event loop: an op's result is awaited when it is awaitable."""
        try:
            kind, arg = _next(steps, None)
            while kind is not _END:
                value = ops[kind](arg)
                kind, arg = _next(steps, await value if inspect.isawaitable(value) else value)
            return arg  # type: ignore[no-any-return]
        except BaseException:
            await self._acancel(call)
            raise

    # ------------------------------------------------------------------ the helpers

    def _context(self, after: Optional[Lease], sleep: Sleep, kind: Type[LeaseContext], model: Optional[str],
                 session: Optional[str], refresh: Optional[RefreshFn], budgets: Budgets) -> Any:  # fmt: skip
        """A ``kind`` context: of a new call, or of ``after``'s, a lease of the same kind whose call goes on."""
        if after is None:
            return kind(self, _Call(self, model, session, refresh, budgets), None, sleep)
        if type(after._context) is not kind or not after.again:
            raise ValueError(f"after= needs a lease of pool.{'alease' if kind is AsyncLeaseContext else 'lease'}() "
                             "whose call goes on (lease.again)")  # fmt: skip
        return kind(self, after._context._call, after.action, sleep)

    def lease(
        self, model: Optional[str] = None, session: Optional[str] = None, *, after: Optional[Lease] = None,
        sleep: Sleep = time.sleep, refresh: Optional[RefreshFn] = None, **budgets: Unpack[Budgets],
    ) -> LeaseContext:
        """One send of a call, as a context manager (see :class:`LeaseContext`).

        Without ``after`` it starts a call (``budgets``, ``refresh`` as in :meth:`call`);
        with ``after``, a reported lease whose call goes on, it follows that call. A loop::

            lease = None
            while lease is None or lease.again:
                with pool.lease(after=lease) as lease:
                    lease.report(httpx.post(url, headers=...))  # a returned 429 is a 429
        """
        return self._context(after, sleep, LeaseContext, model, session, refresh, budgets)  # type: ignore[no-any-return]

    def alease(
        self, model: Optional[str] = None, session: Optional[str] = None, *, after: Optional[Lease] = None,
        sleep: Sleep = asyncio.sleep, refresh: Optional[RefreshFn] = None, **budgets: Unpack[Budgets],
    ) -> AsyncLeaseContext:
        """:meth:`lease` for asyncio: ``async with pool.alease(after=lease) as lease:``, reporting
        with ``await lease.areport(response)``. ``sleep`` is awaited; ``refresh`` (sync, or
        returning a coroutine run on the loop) and a store's IO run off the event loop."""
        return self._context(after, sleep, AsyncLeaseContext, model, session, refresh, budgets)  # type: ignore[no-any-return]

    def call(
        self, fn: Callable[[Lease], Any], model: Optional[str] = None, session: Optional[str] = None, *,
        sleep: Sleep = time.sleep, refresh: Optional[RefreshFn] = None, **budgets: Unpack[Budgets],
    ) -> Any:
        """One call: ``fn(lease)`` for each ``send`` core asks for, until ``done`` or ``give_up``.

        ``fn``'s outcome is reported: an httpx / requests ``Response`` returned as itself (a
        returned 429 is a 429), a provider exception (:func:`response_info`) raised as its
        outcome, any other value as a success. ``sleep`` (seconds) and ``refresh`` (default:
        the pool's) perform those actions; budgets: :class:`Budgets`. ``done`` returns ``fn``'s
        value; ``give_up`` re-raises the last send's error or returns its response, or raises
        :class:`~credpool.NoCredentialError` (``.action``). Other exceptions cancel the call.

        ``fn`` is called once per send: a client that retries by itself inside ``fn`` (the
        openai and anthropic SDKs do by default) should be built with ``max_retries=0``."""
        call = _Call(self, model, session, refresh, budgets)

        def send(action: Action) -> Decision:
            try:
                value = fn(Lease(action, {}, session))
            except Exception as exc:
                return call.failed(exc)
            return call.sent(value, _returned_info(value), False)

        return call.end(self._perform(call, call.steps(), sleep, send))

    async def acall(
        self, fn: Callable[[Lease], Any], model: Optional[str] = None, session: Optional[str] = None, *,
        sleep: Sleep = asyncio.sleep, refresh: Optional[RefreshFn] = None, **budgets: Unpack[Budgets],
    ) -> Any:
        """:meth:`call` for asyncio: what ``fn(lease)`` returns is awaited when it is awaitable
        (an ``AsyncOpenAI`` call: its result or exception is the outcome); ``sleep`` is awaited;
        ``refresh`` (sync, or returning a coroutine run on the loop) and a store's IO run off
        the event loop. Cancelling the task cancels the call (its lease released, no mark)."""
        call = _Call(self, model, session, refresh, budgets)

        async def send(action: Action) -> Decision:
            try:
                value = fn(Lease(action, {}, session))
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                return call.failed(exc)
            return call.sent(value, _returned_info(value), False)

        return call.end(await self._perform(call, call.steps(), sleep, send, asynchronous=True))

