"""A real OpenAI-compatible chat server for tests, on 127.0.0.1, with injectable faults.

Built on the standard library's ``http.server`` (a threading HTTP/1.1 server): ``POST /v1/chat/completions``
answers with the text a responder function returns (the tests plug in a real causal LM through sc_llm's local
generation) in OpenAI's response format; ``GET /v1/models`` lists the model. Faults queued in
``server.faults`` apply to the next requests, one each: ``'timeout'`` (answer only after ``delay`` seconds),
``'429'`` (rate limit with ``Retry-After: 0``), ``'500'``, ``'bad_json'`` (a 200 whose body is not JSON),
``'no_choices'`` and ``('reply', text)`` (answer ``text`` instead of the model). Every request is recorded.
llama-cpp-python's server would be the natural real server, but it builds llama.cpp from source (about 100
minutes on the 2 shared cores of the development machine), too slow for CI.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout fault)
            pass

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, json.dumps({"object": "list", "data": [{"id": self.server.model_name}]}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        owner = self.server.owner
        with owner.lock:
            fault = owner.faults.popleft() if owner.faults else None
            owner.requests.append({"body": body, "authorization": self.headers.get("Authorization"), "fault": fault})
        if fault == "timeout":
            time.sleep(owner.delay)
        elif fault == "429":
            limited = b'{"error": {"message": "rate limited", "type": "rate_limit"}}'
            return self._send(429, limited, {"Retry-After": "0"})
        elif fault == "500":
            return self._send(500, b'{"error": {"message": "server error"}}')
        elif fault == "bad_json":
            return self._send(200, b'{"id": "x", "choices": [')
        if isinstance(fault, tuple) and fault[0] == "reply":
            text = fault[1]
        else:
            text = owner.respond(body["messages"], body)
        choices = (
            []
            if fault == "no_choices"
            else [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
        )
        reply = {
            "id": f"chatcmpl-{len(owner.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", owner.model_name),
            "choices": choices,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
        self._send(200, json.dumps(reply).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ChatServer
    model_name: str


class ChatServer:
    """``with ChatServer(respond) as server: server.base_url`` → ``'http://127.0.0.1:<port>/v1'``."""

    def __init__(self, respond: Callable[[list[dict], dict], str], *, model_name: str = "tiny", delay: float = 2.0):
        self.respond, self.model_name, self.delay = respond, model_name, delay
        self.faults: deque = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def __enter__(self) -> ChatServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner, self._httpd.model_name = self, self.model_name
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
