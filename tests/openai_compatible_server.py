"""A scriptable OpenAI-compatible server for tests, on 127.0.0.1, with injectable faults.

Built on the standard library's ``http.server`` (a threading HTTP/1.1 server): ``POST /v1/chat/completions``
answers with the text a responder function returns (the tests plug in a real causal LM through sc_llm's local
generation) in OpenAI's response format; ``POST /v1/embeddings`` answers ``embed(texts, body)`` (default: a
fixed vector per text, from its hash); ``GET /v1/models`` lists the model. Faults queued in ``server.faults``
apply to the next requests, one each (``None``: no fault): ``'timeout'`` (answer only after ``delay``
seconds), ``'429'`` (rate limit with ``Retry-After: 0``), ``'500'``, ``'404'`` (an unknown model),
``'bad_json'`` (a 200 whose body is truncated JSON), ``'html'`` (a 200 with an HTML page, as a proxy in front
of a dead server sends), ``'no_choices'``, ``('reply', text)`` (answer ``text`` instead of the model) and, for
embeddings, ``'nan'`` (a NaN in the first vector), ``'short'`` (the first vector one dimension short) and
``'missing'`` (one vector fewer than texts). Every request is recorded. The real servers of
``tests/servers.py`` cover what a script cannot fake honestly (a real model's answers, a killed process); this
one covers the faults a real server will not produce on demand.
"""

from __future__ import annotations

import hashlib
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

    def _send(self, status: int, body: bytes, headers: dict | None = None, content_type: str = "application/json"):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
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

    def _fault(self, fault) -> bool:
        """Apply a transport-level fault; whether the request has been answered by it."""
        if fault == "timeout":
            time.sleep(self.server.owner.delay)
        elif fault == "429":
            limited = b'{"error": {"message": "rate limited", "type": "rate_limit"}}'
            self._send(429, limited, {"Retry-After": "0"})
        elif fault == "500":
            self._send(500, b'{"error": {"message": "server error"}}')
        elif fault == "404":
            self._send(404, b'{"error": {"message": "The model `nope` does not exist."}}')
        elif fault == "bad_json":
            self._send(200, b'{"id": "x", "choices": [')
        elif fault == "html":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self._send(200, page, content_type="text/html")
        return fault in ("429", "500", "404", "bad_json", "html")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        route = self.path.rstrip("/")
        if route not in ("/v1/chat/completions", "/v1/embeddings"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        owner = self.server.owner
        with owner.lock:
            fault = owner.faults.popleft() if owner.faults else None
            owner.requests.append({"body": body, "authorization": self.headers.get("Authorization"), "fault": fault})
        if self._fault(fault):
            return None
        if route == "/v1/embeddings":
            return self._embeddings(body, fault)
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

    def _embeddings(self, body: dict, fault) -> None:
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        vectors = [list(map(float, v)) for v in self.server.owner.embed(texts, body)]
        if fault == "nan":
            vectors[0][0] = float("nan")  # json.dumps writes NaN, which Python's (and the client's) parser reads
        elif fault == "short":
            vectors[0] = vectors[0][:-1]
        elif fault == "missing":
            vectors = vectors[:-1]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        reply = {"object": "list", "data": data, "model": body.get("model"), "usage": {"prompt_tokens": 0}}
        self._send(200, json.dumps(reply).encode())


def hashed_vectors(texts: list[str], body: dict, dim: int = 8) -> list[list[float]]:
    """A fixed pseudo-embedding per text (its SHA-256 bytes, centred), the default of ``ChatServer(embed=)``."""
    return [[(b - 127.5) / 127.5 for b in hashlib.sha256(t.encode()).digest()[:dim]] for t in texts]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ChatServer
    model_name: str


class ChatServer:
    """``with ChatServer(respond) as server: server.base_url`` → ``'http://127.0.0.1:<port>/v1'``."""

    def __init__(
        self,
        respond: Callable[[list[dict], dict], str] | None = None,
        *,
        embed: Callable[[list[str], dict], list[list[float]]] = hashed_vectors,
        model_name: str = "tiny",
        delay: float = 2.0,
    ):
        self.respond, self.embed, self.model_name, self.delay = respond, embed, model_name, delay
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
