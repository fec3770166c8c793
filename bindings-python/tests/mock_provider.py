"""A mock LLM provider on 127.0.0.1 for the transport tests: a threaded ``http.server`` that
answers with the providers' real headers and bodies (OpenAI chat completions, Anthropic
messages, JSON and SSE; their error shapes and rate-limit headers), and records per request
the credential headers it saw."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

# ----------------------------------------------------------------------------- answers


@dataclass
class Json:
    status: int
    headers: Dict[str, str]
    body: Any


@dataclass
class Sse:
    """A 200 ``text/event-stream`` sent in chunks; ``fail_after``: the connection drops
    after that many chunks (no terminating chunk)."""

    events: List[bytes]
    fail_after: Optional[int] = None


@dataclass
class Drop:
    """No answer: the connection closes before a status line (the client sees a disconnect)."""


Answer = Union[Json, Sse, Drop]

OPENAI_COMPLETION = Json(200, {"x-request-id": "req_ok", "openai-processing-ms": "12"}, {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello", "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
})  # fmt: skip


def _openai_chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> bytes:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


OPENAI_STREAM = [
    _openai_chunk({"role": "assistant", "content": ""}),
    _openai_chunk({"content": "hel"}),
    _openai_chunk({"content": "lo"}),
    _openai_chunk({}, "stop"),
    b"data: [DONE]\n\n",
]


def openai_429(reset: str = "2s", retry_after: str = "2") -> Json:
    return Json(429, {
        "retry-after": retry_after, "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": reset, "x-ratelimit-reset-tokens": "1ms", "x-request-id": "req_429",
    }, {"error": {
        "message": "Rate limit reached for gpt-4o in organization org-test on requests per min (RPM): "
                   f"Limit 500, Used 500, Requested 1. Please try again in {reset}.",
        "type": "requests", "param": None, "code": "rate_limit_exceeded",
    }})  # fmt: skip


OPENAI_401 = Json(401, {"www-authenticate": 'Bearer realm="OpenAI API"'}, {"error": {
    "message": "Incorrect API key provided: sk-te***-a. You can find your API key at "
               "https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error", "param": None, "code": "invalid_api_key",
}})  # fmt: skip
OPENAI_403 = Json(403, {}, {"error": {
    "message": "Country, region, or territory not supported", "type": "request_forbidden", "param": None,
    "code": "unsupported_country_region_territory",
}})  # fmt: skip
OPENROUTER_402 = Json(402, {}, {"error": {
    "code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
}})  # fmt: skip

ANTHROPIC_MESSAGE = Json(200, {"request-id": "req_011", "anthropic-organization-id": "org-test"}, {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 1},
})  # fmt: skip


def _event(name: str, data: Dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


ANTHROPIC_STREAM = [
    _event("message_start", {"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
    _event("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
    _event("ping", {"type": "ping"}),
    _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": "hel"}}),
    _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": "lo"}}),
    _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": 2}}),
    _event("message_stop", {"type": "message_stop"}),
]  # fmt: skip


def _anthropic_error(status: int, kind: str, message: str, headers: Optional[Dict[str, str]] = None) -> Json:
    return Json(status, {"request-id": "req_err", **(headers or {})},
                {"type": "error", "error": {"type": kind, "message": message}})  # fmt: skip


def anthropic_429(reset_iso: str, retry_after: str = "30") -> Json:
    return _anthropic_error(429, "rate_limit_error",
                            "This request would exceed the rate limit for your organization of 50 requests per "
                            "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
                            {"retry-after": retry_after, "anthropic-ratelimit-requests-limit": "50",
                             "anthropic-ratelimit-requests-remaining": "0",
                             "anthropic-ratelimit-requests-reset": reset_iso})  # fmt: skip


ANTHROPIC_401 = _anthropic_error(401, "authentication_error", "invalid x-api-key")
ANTHROPIC_OAUTH_401 = _anthropic_error(401, "authentication_error", "OAuth token has expired. Please obtain a "
                                       "new token or refresh your existing token.")  # fmt: skip
ANTHROPIC_403 = _anthropic_error(403, "permission_error",
                                 "Your API key does not have permission to use the specified resource.")
ANTHROPIC_529 = _anthropic_error(529, "overloaded_error", "Overloaded")

# ----------------------------------------------------------------------------- the server


@dataclass
class Seen:
    """One request as the provider saw it."""

    path: str
    token: str  # the Bearer token, else the x-api-key
    authorization: Optional[str]
    x_api_key: Optional[str]
    anthropic_beta: Optional[str]
    retry_count: Optional[str]  # x-stainless-retry-count
    body: Any
    status: int = 0


@dataclass
class Provider:
    url: str = ""
    answer: Callable[[Seen], Answer] = lambda seen: OPENAI_COMPLETION
    seen: List[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, token: str) -> int:
        return sum(1 for s in self.seen if s.token == token)

    def tokens(self) -> List[str]:
        return [s.token for s in self.seen]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        auth = self.headers.get("authorization")
        key = self.headers.get("x-api-key")
        token = auth[len("Bearer "):] if auth and auth.startswith("Bearer ") else (key or "")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("latin-1")
        seen = Seen(self.path, token, auth, key, self.headers.get("anthropic-beta"),
                    self.headers.get("x-stainless-retry-count"), body)  # fmt: skip
        provider: Provider = self.server.provider
        answer = provider.answer(seen)
        seen.status = answer.status if isinstance(answer, Json) else 0 if isinstance(answer, Drop) else 200
        with provider.lock:
            provider.seen.append(seen)
        if isinstance(answer, Drop):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(answer, Json):
            data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for n, event in enumerate(answer.events):
            if answer.fail_after is not None and n >= answer.fail_after:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the stream breaks midway: no last chunk
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 100 concurrent clients connect at once


def serve() -> Tuple[Provider, Callable[[], None]]:
    """Starts a provider; returns it and the function stopping it."""
    server = _Server(("127.0.0.1", 0), _Handler)
    provider = Provider()
    server.provider = provider  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return provider, stop


def running() -> Iterator[Provider]:
    provider, stop = serve()
    try:
        yield provider
    finally:
        stop()
