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

Half the ids it sends are real (a completed job, a plugin), so the stream, the result and
its exports are really read and checked, not only their 404s.

The budget: SCHEMATHESIS_MAX_EXAMPLES examples per operation (default 200, about 5,000
requests a run) and a fixed seed (SCHEMATHESIS_SEED), so CI sees the same requests each
run; each run takes about a minute on two cores, this module about two. Schemathesis
tests 20 of the document's 21 operations: it leaves out the document's own URL, which it
loads the document from (the first test checks that one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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


def _submit(server: Server, speech: Path) -> str:
    """A completed `echo` job of the admin's tenant; its id."""
    boundary = "sandscribe-openapi-test"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="plugin"\r\n\r\necho\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + (speech / "goforward.wav").read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        server.base_url + "/api/jobs",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {ADMIN_KEY}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        job = json.loads(response.read())
    deadline = time.monotonic() + 30
    while job["status"] != "completed":
        assert time.monotonic() < deadline and job["status"] in {"queued", "running"}, job
        time.sleep(0.05)
        request = urllib.request.Request(
            f"{server.base_url}/api/jobs/{job['id']}",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            job = json.loads(response.read())
    return job["id"]


@pytest.fixture(scope="module")
def known_ids(keyed_server, speech) -> str:
    """Schemathesis settings that make it use real ids half the time: a completed job
    (its events, result and exports are then really read and checked), another one for
    the delete to remove, and the plugin. Random ids alone would only ever be 404s."""
    job, deletable = _submit(keyed_server, speech), _submit(keyed_server, speech)
    return f"""
[dictionaries.job]
values = ["{job}"]

[dictionaries.deletable]
values = ["{deletable}"]

[dictionaries.plugin]
values = ["echo"]

[[operations]]
include-path-regex = '^/api/(jobs|results)/\\{{id\\}}'
exclude-method = "DELETE"
parameters = {{ "path.id" = {{ dictionary = "job", probability = 0.5 }} }}

[[operations]]
include-path = "/api/results/{{id}}"
include-method = "DELETE"
parameters = {{ "path.id" = {{ dictionary = "deletable", probability = 0.5 }} }}

[[operations]]
include-path-regex = '^/(api/plugins|api/admin/plugins|v1/models)/\\{{id\\}}'
parameters = {{ "path.id" = {{ dictionary = "plugin", probability = 0.5 }} }}
"""


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


def _schemathesis(server: Server, known_ids: str, *extra: str) -> None:
    """Runs Schemathesis against `server`, failing with its report on any finding."""
    st = Path(sys.executable).with_name("st")
    folder = Path(tempfile.mkdtemp(prefix="schemathesis-"))
    config = folder / "schemathesis.toml"
    config.write_text((HERE / "schemathesis.toml").read_text() + known_ids)
    command = [
        str(st),
        "--config-file", str(config),
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
    try:
        run = subprocess.run(
            command,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    took = time.monotonic() - started
    report = run.stdout[-20000:] + run.stderr[-5000:]
    print(f"schemathesis ran {took:.0f} s\n{report}")
    assert server.process.poll() is None, f"the server died\n{server.log_tail()}"
    assert run.returncode == 0, f"schemathesis found problems:\n{report}\n{server.log_tail()}"


def test_schemathesis_finds_nothing_with_an_admin_key(keyed_server, known_ids):
    _schemathesis(keyed_server, known_ids, "--header", f"Authorization: Bearer {ADMIN_KEY}")


def test_schemathesis_finds_nothing_without_a_key(keyed_server, known_ids):
    _schemathesis(keyed_server, known_ids)
