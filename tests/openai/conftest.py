"""The harness: the real `sandscribe serve` binary, and OpenAI's own Python client.

`cargo xtask test` runs these tests with the paths below set; run alone, they default to
where `cargo xtask setup` puts things:

    target/venv/bin/python -m pytest tests/openai
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _path(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable) or ROOT / default)


SERVER_BIN = _path("SANDSCRIBE_BIN", "target/release/sandscribe")
SPEECH_DIR = _path("SANDSCRIBE_SPEECH_DIR", "target/speech")
FIXTURE_PLUGINS = _path("SANDSCRIBE_FIXTURE_PLUGINS", "target/fixture-plugins")
PLUGINS = _path("SANDSCRIBE_PLUGINS", "plugins")
EXPORT_SAMPLES = _path("SANDSCRIBE_EXPORT_SAMPLES", "target/export-samples")

WHISPER = "whisper-tiny-en"
#: The multilingual model `cargo xtask setup --models base` installs (it can translate).
WHISPER_BASE = "whisper-base"

STARTUP_TIMEOUT = 120


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} is missing at {path}; run `cargo xtask setup` first")
    return path


class Server:
    """`sandscribe serve` on a free port, with its own data folder and plugins folder."""

    def __init__(self, plugins: dict[str, Path], config: str = "", cache: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="sandscribe-openai-"))
        plugins_dir = self.dir / "plugins"
        plugins_dir.mkdir()
        for plugin_id, folder in plugins.items():
            (plugins_dir / plugin_id).symlink_to(_require(folder, f"the {plugin_id} plugin"))
        data = self.dir / "data"
        data.mkdir()
        if cache is not None:
            # Compiled plugins are cached by hash; sharing the cache spares each server
            # the compilation of Whisper.
            (data / "cache").symlink_to(cache)
        (self.dir / "config.toml").write_text(config)
        self.log_path = self.dir / "server.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                str(_require(SERVER_BIN, "the server binary")),
                "serve",
                "--listen", "127.0.0.1:0",
                "--plugins", str(plugins_dir),
                "--data", str(data),
                "--config", str(self.dir / "config.toml"),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        self.address = self._read_address()
        self.base_url = f"http://{self.address}"

    def _read_address(self) -> str:
        found: list[str] = []

        def read_first_line():
            line = self.process.stdout.readline().decode()
            found.append(line)
            # Keep draining so the server never blocks on a full pipe.
            shutil.copyfileobj(self.process.stdout, self._log)

        threading.Thread(target=read_first_line, daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not found and time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.05)
        prefix = "listening on http://"
        if not found or not found[0].startswith(prefix):
            self.stop()
            pytest.fail(f"the server did not start: {found!r}\n{self.log_tail()}")
        return found[0][len(prefix):].strip()

    def client(self, **options) -> openai.OpenAI:
        """OpenAI's client pointed at this server; no retries, so errors show at once."""
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 120)
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key="sk-anything", **options)

    def get(self, path: str) -> tuple[int, bytes, dict]:
        """A GET outside the OpenAI API (the JSON API, exports)."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=30) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def get_json(self, path: str):
        status, body, _ = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def post(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url + path, method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_job(self, job_id: str, statuses: set[str], timeout: float = 10) -> dict:
        """Polls a job until its status is one of `statuses` (for checks from outside)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_json(f"/api/jobs/{job_id}")
            if job["status"] in statuses or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def active_jobs(self, plugin: str | None = None) -> list[dict]:
        jobs = self.get_json("/api/jobs")["jobs"]
        return [j for j in jobs if plugin is None or j["plugin"]["id"] == plugin]

    def log_tail(self, lines: int = 60) -> str:
        try:
            self._log.flush()
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def multipart(fields: dict[str, str], audio: bytes, filename: str = "a.wav") -> tuple[str, bytes]:
    """A `multipart/form-data` body of text fields and one audio `file`: (content type, body)."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + audio + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def fixture_plugin(plugin_id: str) -> Path:
    return FIXTURE_PLUGINS / plugin_id


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("compile-cache")


@pytest.fixture(scope="session")
def server(compile_cache):
    """One server for the session: Whisper tiny.en (plus Whisper base when installed)
    next to the fast `echo` and `slow` fixtures."""
    plugins = {
        WHISPER: PLUGINS / WHISPER,
        "echo": fixture_plugin("echo"),
        "slow": fixture_plugin("slow"),
    }
    if (PLUGINS / WHISPER_BASE / "plugin.wasm").is_file():
        plugins[WHISPER_BASE] = PLUGINS / WHISPER_BASE
    server = Server(plugins, "[jobs]\nmax_running = 2\n", cache=compile_cache)
    yield server
    server.stop()


@pytest.fixture
def make_server(compile_cache):
    """Starts servers with their own config (stopped after the test)."""
    started: list[Server] = []

    def start(plugins: list[str], config: str = "") -> Server:
        server = Server({p: fixture_plugin(p) for p in plugins}, config, cache=compile_cache)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def client(server) -> openai.OpenAI:
    return server.client()


@pytest.fixture(scope="session")
def speech() -> Path:
    return _require(SPEECH_DIR / "goforward.wav", "the test speech").parent


def pytest_runtest_makereport(item, call):
    """Shows the end of the server log when a test that used a server fails."""
    if call.when == "call" and call.excinfo is not None:
        for name in ("server",):
            server = item.funcargs.get(name)
            if isinstance(server, Server):
                item.add_report_section("call", "server log (tail)", server.log_tail())
