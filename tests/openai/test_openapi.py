"""The OpenAPI document at /api/openapi.json, checked by tools that are not ours.

- openapi-spec-validator (PyPI) accepts the document the real server serves as OpenAPI 3.1.
- Schemathesis (PyPI) reads that document, generates requests for every operation from
  it (valid ones and, on purpose, invalid ones), sends them to the real server, and checks
  every answer: no 5xx, every status and content type documented, every body and header
  matching its schema, invalid input rejected, unsupported methods answered 405, a request
  without the key refused. It runs once with an admin's API key and once with none, against
  a server with API keys configured (so the anonymous rate limit is on: it is raised here,
  not switched off, so the run is not throttled into 429s).

Nothing is excluded: the event stream is read for a few events only
(`max-stream-events` in schemathesis.toml), and the uploads' positive-data check accepts
the refusals a schema cannot foresee (random bytes are not audio), as that file says.

The budget: SCHEMATHESIS_MAX_EXAMPLES examples per operation (default 200) and a fixed
seed (SCHEMATHESIS_SEED), so CI sees the same requests each run; a run takes about a
minute on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from conftest import Server, fixture_plugin

HERE = Path(__file__).resolve().parent
ADMIN_KEY = "sk-openapi-admin-0123456789"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES") or 200)
SEED = int(os.environ.get("SCHEMATHESIS_SEED") or 20261202)
#: The longest a whole run may take before the test fails rather than hold up CI.
RUN_TIMEOUT = 600


def _config() -> str:
    digest = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    return (
        f'[[api_keys]]\nsha256 = "{digest}"\ntenant = "alice"\nrole = "admin"\n\n'
        # Schemathesis's anonymous run sends thousands of requests a minute from one
        # address; at the default limit most would be 429s and test nothing else.
        "[http]\nanonymous_requests_per_minute = 1000000\n"
    )


@pytest.fixture(scope="module")
def keyed_server(compile_cache):
    server = Server({"echo": fixture_plugin("echo")}, _config(), cache=compile_cache)
    yield server
    server.stop()


def _document(server: Server) -> dict:
    status, body, headers = server.get("/api/openapi.json")
    assert status == 200, (status, body)
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert content_type.startswith("application/json"), headers
    return json.loads(body)


def test_the_document_is_public_and_valid_openapi_3_1(keyed_server):
    # Fetched without a key from a server that has keys: the document is public.
    document = _document(keyed_server)
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert "/api/jobs/{id}/events" in document["paths"]
    assert "/v1/audio/transcriptions" in document["paths"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["api_key"] == {**schemes["api_key"], "type": "http", "scheme": "bearer"}
    assert schemes["login_cookie"]["in"] == "cookie"
    # With keys configured, an operation needs one: no anonymous alternative is listed.
    assert {} not in document["paths"]["/api/jobs"]["get"]["security"]


def test_single_user_mode_lists_no_credential_as_enough(make_server):
    server = make_server(["echo"])
    document = _document(server)
    validate(document)
    assert {} in document["paths"]["/api/jobs"]["get"]["security"]
    assert document["paths"]["/healthz"]["get"]["security"] == []


def _schemathesis(server: Server, *extra: str) -> None:
    """Runs Schemathesis against `server`, failing with its report on any finding."""
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{server.base_url}/api/openapi.json",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "2",
        "--request-timeout", "30",
        *extra,
    ]
    started = time.monotonic()
    # Its own working folder, so nothing (a cache, reports) lands in the repository.
    with tempfile.TemporaryDirectory(prefix="schemathesis-") as folder:
        run = subprocess.run(
            command,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    took = time.monotonic() - started
    report = run.stdout[-20000:] + run.stderr[-5000:]
    print(f"schemathesis ran {took:.0f} s\n{report}")
    assert server.process.poll() is None, f"the server died\n{server.log_tail()}"
    assert run.returncode == 0, f"schemathesis found problems:\n{report}\n{server.log_tail()}"


def test_schemathesis_finds_nothing_with_an_admin_key(keyed_server):
    _schemathesis(keyed_server, "--header", f"Authorization: Bearer {ADMIN_KEY}")


def test_schemathesis_finds_nothing_without_a_key(keyed_server):
    _schemathesis(keyed_server)
