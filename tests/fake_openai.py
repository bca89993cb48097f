"""A local, scriptable OpenAI-compatible HTTP server for tests.

It is a real HTTP server (stdlib :class:`http.server.ThreadingHTTPServer` on 127.0.0.1,
an ephemeral port, one thread per request) so that tests exercise the real ``openai``
client end to end: serialisation, retries, timeouts, error mapping.

Usage (the ``fake_openai`` fixture of ``conftest.py`` starts and stops one)::

    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*x")     # every request
    fake_openai.reply_with(lambda body: "...")                           # computed reply
    fake_openai.enqueue(FakeReply(status=429), "ansatz: ...")            # first, in order
    fake_openai.latency = 0.3                                            # seconds
    fake_openai.reply_with(FakeReply(drip=10.0))     # headers at once, body over 10 s
    client = fake_openai.client(max_retries=0)                           # openai.OpenAI
    ...
    fake_openai.requests          # JSON bodies of the chat requests, in arrival order
    fake_openai.max_in_flight     # most requests served at the same time

Endpoints: ``POST /v1/chat/completions`` (and ``/chat/completions``), ``GET /v1/models``
(and ``/models``), and OpenRouter's key endpoint ``GET /v1/auth/key``: with the bearer
key ``server.api_key`` (any key when it is None) it answers ``{"data": {"usage",
"limit", "limit_remaining", ...}}``, where every chat request so far cost
``cost_per_call`` of ``credit`` (``credit=None``: a key without a limit); else 401.
Anything else is a 404 in OpenAI's error format.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai

__all__ = ["FakeOpenAIServer", "FakeReply", "closed_port_url"]

DEFAULT_REPLY = "ansatz: lambda x, *params: params[0]*x + params[1]\ninitial: [1.0, 0.0]"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "model_not_found",
    429: "rate_limit_exceeded",
}


@dataclass
class FakeReply:
    """One scripted response.

    Attributes
    ----------
    content : str or None
        The assistant message content (None sends ``"content": null``).
    status : int
        HTTP status; anything but 200 sends an OpenAI-style error body.
    latency : float or None
        Seconds to wait before answering (None: the server's ``latency``).
    body : bytes, str or None
        Raw body sent instead of the generated JSON (e.g. malformed JSON).
    content_type : str
        Content-Type of the response.
    headers : dict
        Extra response headers.  Error statuses get ``retry-after-ms: 10`` unless given, so
        that the openai client's retries are fast.
    finish_reason : str
        ``choices[0].finish_reason``.
    prompt_tokens, completion_tokens : int
        Reported ``usage`` (omitted if ``usage`` is False).
    usage : bool
        Whether to include the ``usage`` object.
    message : str
        Error message for non-200 statuses.
    drip : float or None
        Seconds over which to send the body, a few bytes every 0.1 s after the headers
        (a slow or stalling server: no single read waits long, so a client's per-read
        timeout never fires).  None sends it at once.
    """

    content: str | None = DEFAULT_REPLY
    status: int = 200
    latency: float | None = None
    body: bytes | str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    prompt_tokens: int = 100
    completion_tokens: int = 20
    usage: bool = True
    message: str = "fake error"
    drip: float | None = None


Responder = Callable[[dict[str, Any]], "FakeReply | str | None"]


class FakeOpenAIServer:
    """The scriptable server; start with :meth:`start` (or use as a context manager)."""

    def __init__(self, *, latency: float = 0.0, model: str = "fake/vision-model") -> None:
        self.latency = latency
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: collections.deque[FakeReply | str] = collections.deque()
        self._responder: Responder = lambda body: FakeReply()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: list[openai.OpenAI] = []
        # OpenRouter's /auth/key: what the key has spent and has left.
        self.api_key: str | None = None
        self.credit: float | None = 10.0
        self.cost_per_call = 0.001

    # -- scripting -------------------------------------------------------------------

    def reply_with(self, reply: FakeReply | str | Responder) -> None:
        """Set the default response: a text, a :class:`FakeReply`, or a callable.

        A callable receives the request's JSON body and returns a text, a FakeReply or
        None (None means the default reply).
        """
        if callable(reply):
            self._responder = reply
        else:
            fixed = reply
            self._responder = lambda body: fixed

    def enqueue(self, *replies: FakeReply | str) -> None:
        """Queue responses served first, one per request, before the default one."""
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        """Forget recorded requests and counters (the script is kept)."""
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.paths.clear()
            self.max_in_flight = self.in_flight

    @property
    def calls(self) -> int:
        """Chat-completion requests received so far."""
        return len(self.requests)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Start serving on an ephemeral loopback port, in a daemon thread."""
        handler = _make_handler(self)
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close the clients made by :meth:`client`."""
        self._stop.set()
        for c in self._clients:
            c.close()
        self._clients.clear()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------------------

    def client(
        self, *, max_retries: int = 0, timeout: float = 10.0, api_key: str = "test-key"
    ) -> openai.OpenAI:
        """A synchronous ``openai.OpenAI`` client for this server (closed at :meth:`stop`)."""
        c = openai.OpenAI(
            base_url=self.base_url, api_key=api_key, max_retries=max_retries, timeout=timeout
        )
        self._clients.append(c)
        return c

    def async_client(
        self, *, max_retries: int = 0, timeout: float = 10.0, api_key: str = "test-key"
    ) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` client for this server.

        Close it in the event loop that used it (``async with`` or ``await c.close()``).
        """
        return openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key, max_retries=max_retries, timeout=timeout
        )

    # -- serving ---------------------------------------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> FakeReply:
        with self._lock:
            queued = self._queue.popleft() if self._queue else None
        reply = queued if queued is not None else self._responder(body)
        if reply is None:
            reply = FakeReply()
        if isinstance(reply, str):
            reply = FakeReply(content=reply)
        return reply

    def _completion(self, reply: FakeReply, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            n = len(self.requests)
        out: dict[str, Any] = {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", self.model)),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        if reply.usage:
            out["usage"] = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            }
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected in the fault tests: stay quiet.
        pass


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so no keep-alive sockets outlive a test.
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _send(
            self,
            status: int,
            payload: bytes,
            content_type: str = "application/json",
            headers: dict[str, str] | None = None,
            drip: float | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if not drip:
                self.wfile.write(payload)
                return
            tick = 0.1
            steps = max(1, round(drip / tick))
            size = max(1, -(-len(payload) // steps))
            for k in range(0, len(payload), size):
                self.wfile.write(payload[k : k + size])
                self.wfile.flush()
                if server._stop.wait(tick):
                    return  # shutting down: drop the connection

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None):
            err = {
                "error": {
                    "message": message,
                    "type": _ERROR_TYPES.get(status, "server_error"),
                    "param": None,
                    "code": _ERROR_TYPES.get(status),
                }
            }
            self._send(status, json.dumps(err).encode(), headers=headers)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/auth/key", "/auth/key"):
                given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if server.api_key is not None and given != server.api_key:
                    self._error(401, "No auth credentials found")
                    return
                used = server.calls * server.cost_per_call
                left = None if server.credit is None else server.credit - used
                data = {
                    "label": "fake-key",
                    "usage": used,
                    "limit": server.credit,
                    "limit_remaining": left,
                    "is_free_tier": False,
                }
                self._send(200, json.dumps({"data": data}).encode())
            elif self.path.rstrip("/") in ("/v1/models", "/models"):
                data = {
                    "object": "list",
                    "data": [
                        {"id": server.model, "object": "model", "created": 0, "owned_by": "me"}
                    ],
                }
                self._send(200, json.dumps(data).encode())
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route {self.path}")
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._error(400, "request body is not JSON")
                return
            with server._lock:
                server.requests.append(body)
                server.headers.append(dict(self.headers.items()))
                server.paths.append(self.path)
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                reply = server._next_reply(body)
                latency = server.latency if reply.latency is None else reply.latency
                if latency > 0 and server._stop.wait(latency):
                    return  # shutting down: drop the connection
                self._respond(reply, body)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _respond(self, reply: FakeReply, body: dict[str, Any]) -> None:
            headers = dict(reply.headers)
            if reply.status != 200:
                has_retry = any(k.lower().startswith("retry-after") for k in headers)
                if not has_retry:
                    headers["retry-after-ms"] = "10"
                if reply.body is None:
                    self._error(reply.status, reply.message, headers)
                    return
            if reply.body is not None:
                payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self._send(reply.status, payload, reply.content_type, headers, reply.drip)
                return
            data = json.dumps(server._completion(reply, body)).encode()
            self._send(200, data, reply.content_type, headers, reply.drip)

    return Handler


def closed_port_url() -> str:
    """A ``base_url`` on a loopback port where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
