"""Reading what a provider call produced: :func:`response_info` turns a response or exception
(httpx, httpx2, openai, anthropic, requests, builtin ``ConnectionError``/``TimeoutError``,
plain dicts) into the response core classifies. None of those libraries is imported here:
an object can only come from a library its caller already imported, so they are looked up
in ``sys.modules``.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, Mapping, Optional

__all__ = ["response_info"]


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
