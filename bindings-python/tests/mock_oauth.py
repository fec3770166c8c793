"""A mock OAuth token endpoint on 127.0.0.1 for the built-in refresher's tests.

It issues single-use, rotating refresh tokens as the providers do: a refresh token works
once; a second use is a replay, answered ``invalid_grant`` and recorded in ``replays`` (the
tests fail on any). ``revoked`` tokens are answered ``invalid_grant`` without being a
replay. Bodies are read as JSON or as a form, whichever the content type says."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Set


class MockOAuth:
    """``url`` is the token endpoint; ``seed(token)`` makes a refresh token valid."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.lock = threading.Lock()
        self.valid: Set[str] = set()
        self.used: Set[str] = set()
        self.revoked: Set[str] = set()
        self.replays: List[str] = []
        self.requests: List[Dict[str, Any]] = []
        self.issued = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode()
                kind = self.headers.get("content-type") or ""
                fields = json.loads(raw) if kind.startswith("application/json") else dict(urllib.parse.parse_qsl(raw))
                status, body = owner.answer(fields, {k.lower(): v for k, v in self.headers.items()})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seed(self, token: str) -> None:
        with self.lock:
            self.valid.add(token)

    def answer(self, fields: Dict[str, str], headers: Dict[str, str]) -> tuple[int, Dict[str, Any]]:
        token: Optional[str] = fields.get("refresh_token") or headers.get("x-nous-refresh-token")
        with self.lock:
            self.requests.append({"fields": fields, "headers": headers})
            if fields.get("grant_type") != "refresh_token" or token is None:
                return 400, {"error": "invalid_request"}
            if token in self.revoked:
                return 400, {"error": "invalid_grant", "error_description": f"{token} was revoked"}
            if token in self.used:
                self.replays.append(token)
                return 400, {"error": "invalid_grant", "error_description": "refresh token reused"}
            if token not in self.valid:
                return 400, {"error": "invalid_grant", "error_description": "unknown refresh token"}
            self.valid.discard(token)
            self.used.add(token)
            self.issued += 1
            fresh = f"rt-{self.issued}"
            self.valid.add(fresh)
            return 200, {"access_token": f"at-{self.issued}", "refresh_token": fresh, "expires_in": self.expires_in}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
