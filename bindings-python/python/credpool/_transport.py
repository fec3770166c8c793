"""Drop-in transports for httpx and httpx2: the SDKs agents already use rotate credentials.

    client = OpenAI(api_key="unused", http_client=httpx2.Client(transport=CredentialTransport(pool)))
    client = AsyncAnthropic(api_key="unused",
                            http_client=httpx2.AsyncClient(transport=AsyncCredentialTransport(pool)))

One request the client sends is one call of core's call driver (SPEC §7), started with the
request's API shape (``api=``, else ``anthropic`` when the SDK set ``anthropic-version``,
else the pool's own shape, as core decides), its URL and the ``model`` of its JSON body. Each ``send`` core asks for goes
to the inner transport with the action's credential where ``auth`` says (the SDK's
``authorization`` / ``x-api-key`` removed), to ``send.url`` when core moved it onto the
entry's ``base_url``, with ``send.model`` written into the body when a fallback changed it.

* A 2xx passes through unread: its body streams to the caller, and the call stays open
  until that body ends. Read to its end (or closed) it is reported a success; a read
  error midway is reported with ``delivered`` (the key is classified, nothing is resent)
  and propagates.
* Any other status is classified from its status, headers and up to ``MAX_READ_BYTES`` of
  its body (the body stays readable by the caller).
* ``sleep`` and ``refresh`` are performed as in ``pool.call`` (the pool's refresher).
* ``give_up`` returns the last provider response with ``x-should-retry: false`` (the
  openai and anthropic SDKs then do not retry what the driver gave up on), re-raises the
  last connection error, or raises :class:`~credpool.NoCredentialError`.
* An SDK's retry of a request (``x-stainless-retry-count`` ≥ 1, after the transport raised)
  continues the call that gave up, with the budgets it spent (``client_retry`` and the
  request's ``request_id``, a digest of its method, URL and body): not a new turn.

The loop is ``_Call.steps``, the same as ``pool.call``'s; the sync and async transports
differ only in what they await. Both work with ``httpx`` and ``httpx2`` alike: the module
is the one the request comes from, and the default inner transport its ``HTTPTransport``
(``AsyncHTTPTransport``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
import time
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Tuple

from credpool import CredpoolError
from credpool._helpers import _DEFERRED, _NOTHING, Action, Budgets, CredentialPool, Decision, RefreshFn, Sleep, _Call
from credpool._responses import _SUCCESS, MAX_READ_BYTES, _body_from_text, _headers, response_info

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncCredentialTransport", "CredentialTransport"]

#: Request headers never passed on as the SDK set them: the credential's, and those the new
#: request computes again (its host may change with its URL, its length with its body).
_DROPPED = frozenset(("authorization", "x-api-key", "host", "content-length", "transfer-encoding"))


def _module(obj: object) -> ModuleType:
    """The httpx-like library ``obj`` comes from (``httpx`` or ``httpx2``)."""
    return sys.modules[type(obj).__module__.partition(".")[0]]


def _json(body: bytes) -> Any:
    if not body.lstrip()[:1] == b"{":
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _model(body: bytes) -> Optional[str]:
    parsed = _json(body)
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else None


def _with_model(body: bytes, model: Optional[str]) -> bytes:
    """``body`` with its JSON ``model`` set to ``model`` when that differs."""
    parsed = _json(body) if model is not None else None
    if not isinstance(parsed, dict) or parsed.get("model") in (None, model):
        return body
    return json.dumps({**parsed, "model": model}, separators=(",", ":")).encode()


class _Stream:
    """A response body: ``head`` (bytes read already), then ``rest`` of ``original``'s chunks.
    ``on_end(exc)`` runs once when it ends: read to its end or closed (None), or a read
    error (the error). Subclassed per library with its ``SyncByteStream``/``AsyncByteStream``."""

    def __init__(self, head: bytes, rest: Any, original: Any, on_end: Optional[Callable[[Any], Any]]) -> None:
        self._head, self._rest, self._original, self._on_end = head, rest, original, on_end

    def _ending(self) -> Optional[Callable[[Any], Any]]:
        on_end, self._on_end = self._on_end, None
        return on_end


class _SyncStream(_Stream):
    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._head:
                yield self._head
            if self._rest is not None:
                yield from self._rest
        except Exception as exc:
            self._end(exc)
            raise
        self._end(None)

    def _end(self, exc: Optional[BaseException]) -> None:
        on_end = self._ending()
        if on_end is not None:
            on_end(exc)

    def close(self) -> None:
        try:
            self._original.close()
        finally:
            self._end(None)


class _AsyncStream(_Stream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._head:
                yield self._head
            if self._rest is not None:
                async for chunk in self._rest:
                    yield chunk
        except Exception as exc:
            await self._end(exc)
            raise
        await self._end(None)

    async def _end(self, exc: Optional[BaseException]) -> None:
        on_end = self._ending()
        if on_end is not None:
            await on_end(exc)

    async def aclose(self) -> None:
        try:
            await self._original.aclose()
        finally:
            await self._end(None)


_STREAM_CLASSES: Dict[Tuple[str, bool], Any] = {}


def _stream_class(mod: ModuleType, sync: bool) -> Any:
    """``_SyncStream``/``_AsyncStream`` as a byte stream of ``mod`` (httpx checks the kind)."""
    key = (mod.__name__, sync)
    if key not in _STREAM_CLASSES:
        bases = (_SyncStream, mod.SyncByteStream) if sync else (_AsyncStream, mod.AsyncByteStream)
        _STREAM_CLASSES[key] = type("CredentialSyncStream" if sync else "CredentialAsyncStream", bases, {})
    return _STREAM_CLASSES[key]


class _Base:
    """What both transports share: the call's start, each send's request, the classification
    of an error response, the end. Nothing here awaits or blocks."""

    _sync = True
    _default_transport = "HTTPTransport"

    def __init__(
        self, pool: CredentialPool, transport: Any = None, *, api: Optional[str] = None,
        session: Optional[str] = None, refresh: Optional[RefreshFn] = None, sleep: Optional[Sleep] = None,
        **budgets: Unpack[Budgets],
    ) -> None:
        """``pool``: a :class:`~credpool.CredentialPool` (or ``StorePool``); ``transport``: the
        inner transport (default: the request's library's ``HTTPTransport`` or
        ``AsyncHTTPTransport``, made at the first request); ``api``: the API shape of the
        requests (default: ``anthropic`` when a request carries ``anthropic-version``, else
        the pool's declared shape, as core decides); ``session``, ``refresh``, ``sleep`` and the budgets as in ``pool.call``."""
        self._pool, self._inner, self._api, self._session = pool, transport, api, session
        self._refresh, self._sleep = refresh, sleep
        self._budgets = budgets

    def __repr__(self) -> str:
        inner = type(self._inner).__name__ if self._inner is not None else None
        return f"{type(self).__name__}(pool={self._pool!r}, transport={inner})"

    def _transport(self, request: Any) -> Any:
        if self._inner is None:
            self._inner = getattr(_module(request), self._default_transport)()
        return self._inner

    def _begin(self, request: Any, body: bytes) -> _Call:
        api = self._api or ("anthropic" if "anthropic-version" in request.headers else None)
        url = str(request.url)
        request_id = hashlib.sha256(f"{request.method.upper()} {url}\n".encode() + body).hexdigest()
        retry = request.headers.get("x-stainless-retry-count", "0")
        return _Call(self._pool, _model(body), self._session, self._refresh, self._budgets, api=api, url=url,
                     request_id=request_id, client_retry=retry.isdigit() and int(retry) > 0 or None)  # fmt: skip

    def _request(self, request: Any, body: bytes, action: Action) -> Any:
        """The request to send for a ``send`` action (SPEC §7's host rule for ``auth``)."""
        mod = _module(request)
        headers = mod.Headers([(k, v) for k, v in request.headers.multi_items() if k.lower() not in _DROPPED])
        auth = action.get("auth") or {}
        if auth:
            headers[auth["header"]] = auth.get("prefix", "") + (action.get("access_token") or "")
        for name, value in (auth.get("extra") or {}).items():
            have = headers.get(name)
            if have is None:
                headers[name] = value
            elif value not in [part.strip() for part in have.split(",")]:
                headers[name] = f"{have},{value}"
        return mod.Request(request.method, action.get("url") or request.url, headers=headers,
                           content=_with_model(body, action.get("model")), extensions=request.extensions)  # fmt: skip

    def _classify(self, call: _Call, response: Any, head: bytes, rest: Any) -> Decision:
        """Reports an error response from its status, headers and the ``head`` of its body
        (``rest``: the chunks not read, None when ``head`` is all of it); the response keeps
        its whole body for the caller."""
        mod = _module(response)
        headers = _headers(response.headers)
        try:  # decoded as the caller would (content-encoding); a cut gzip may not decode
            text: Optional[str] = mod.Response(response.status_code, headers=response.headers, content=head).text
        except Exception:
            text = None
        body = _body_from_text(text, headers.get("content-type", ""))
        info = {"status": response.status_code, "headers": headers, "body": body, "network_error": None}
        response.stream = _stream_class(mod, self._sync)(head, rest, response.stream, None)
        return call.sent(response, info, False)

    def _watch(self, call: _Call, response: Any, on_end: Callable[[Any], Any]) -> Any:
        """A 2xx: its body streams to the caller, and ``on_end`` reports how it ended."""
        stream = response.stream
        response.stream = _stream_class(_module(response), self._sync)(b"", stream, stream, on_end)
        call.outcome, call.thrown = response, False
        return _DEFERRED

    def _ended(self, call: _Call, exc: Optional[BaseException]) -> Optional[Decision]:
        """How a 2xx body ended, as a report (None: not a provider outcome; cancel the call)."""
        if exc is None:
            return call.sent(call.outcome, _SUCCESS, False, True)
        info = response_info(exc)
        return None if info is None else call.sent(exc, info, True, True)

    def _last_response(self, call: _Call) -> Any:
        """The error response the next send supersedes (to close), if any."""
        outcome = call.outcome
        return None if outcome is _NOTHING or call.thrown else outcome

    def _end(self, call: _Call, action: Action) -> Any:
        """The response to hand the client for the call's last action."""
        if action["type"] == "give_up" and self._last_response(call) is not None:
            call.outcome.headers["x-should-retry"] = "false"
        return call.end(action)


class CredentialTransport(_Base):
    """An httpx / httpx2 transport over a :class:`~credpool.CredentialPool`: pass it as
    ``httpx2.Client(transport=CredentialTransport(pool))`` (see the module's doc)."""

    def handle_request(self, request: Any) -> Any:
        body = request.read()
        call, pool = self._begin(request, body), self._pool

        def send(action: Action) -> Any:
            last = self._last_response(call)
            if last is not None:
                last.close()
            try:
                response = self._transport(request).handle_request(self._request(request, body, action))
                if 200 <= response.status_code < 300:
                    return self._watch(call, response, on_end)
                head, rest = _read(response.stream)  # an error body breaking here is a network error
            except Exception as exc:
                return call.failed(exc)
            return self._classify(call, response, head, rest)

        def on_end(exc: Optional[BaseException]) -> None:
            report = self._ended(call, exc)
            with contextlib.suppress(CredpoolError):  # the caller's read goes on regardless
                if report is None:
                    pool._cancel(call)
                else:
                    pool._perform(call, call.step(report), sleep)

        sleep = self._sleep or time.sleep
        return self._end(call, pool._perform(call, call.steps(), sleep, send))

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()

    def __enter__(self) -> CredentialTransport:
        return self

    def __exit__(self, exc_type: Any = None, exc: Optional[BaseException] = None,
                 tb: Optional[TracebackType] = None) -> None:  # fmt: skip
        self.close()


class AsyncCredentialTransport(_Base):
    """:class:`CredentialTransport` for ``httpx.AsyncClient`` / ``httpx2.AsyncClient``
    (``AsyncOpenAI``, ``AsyncAnthropic``): sleeps awaited, a store's IO and the refresh
    callable off the event loop."""

    _sync = False
    _default_transport = "AsyncHTTPTransport"

    async def handle_async_request(self, request: Any) -> Any:
        body = await request.aread()
        call, pool = self._begin(request, body), self._pool

        async def send(action: Action) -> Any:
            last = self._last_response(call)
            if last is not None:
                await last.aclose()
            try:
                response = await self._transport(request).handle_async_request(self._request(request, body, action))
                if 200 <= response.status_code < 300:
                    return self._watch(call, response, on_end)
                head, rest = await _aread(response.stream)  # an error body breaking here is a network error
            except Exception as exc:
                return call.failed(exc)
            return self._classify(call, response, head, rest)

        async def on_end(exc: Optional[BaseException]) -> None:
            report = self._ended(call, exc)
            with contextlib.suppress(CredpoolError):
                if report is None:
                    await pool._acancel(call)
                else:
                    await pool._perform(call, call.step(report), sleep, asynchronous=True)

        sleep = self._sleep or asyncio.sleep
        return self._end(call, await pool._perform(call, call.steps(), sleep, send, asynchronous=True))

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    async def __aenter__(self) -> AsyncCredentialTransport:
        return self

    async def __aexit__(self, exc_type: Any = None, exc: Optional[BaseException] = None,
                        tb: Optional[TracebackType] = None) -> None:  # fmt: skip
        await self.aclose()


def _read(stream: Any) -> Tuple[bytes, Optional[Iterator[bytes]]]:
    """Up to ``MAX_READ_BYTES`` of a body (more by at most a chunk), and the chunks left (None:
    none; then the stream is closed)."""
    chunks: List[bytes] = []
    rest = iter(stream)
    for chunk in rest:
        chunks.append(chunk)
        if sum(map(len, chunks)) > MAX_READ_BYTES:
            return b"".join(chunks), rest
    stream.close()
    return b"".join(chunks), None


async def _aread(stream: Any) -> Tuple[bytes, Optional[AsyncIterator[bytes]]]:
    """:func:`_read` of an async stream."""
    chunks: List[bytes] = []
    rest = stream.__aiter__()
    async for chunk in rest:
        chunks.append(chunk)
        if sum(map(len, chunks)) > MAX_READ_BYTES:
            return b"".join(chunks), rest
    await stream.aclose()
    return b"".join(chunks), None
