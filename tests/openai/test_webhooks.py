"""Webhooks, checked by an independent implementation of Standard Webhooks: the PyPI
`standardwebhooks` package verifies every delivery the server signs, with the secret
of the tenant the job belongs to (and refuses it with any other secret, or with a body
changed by one byte). A receiver on loopback answers 204 to what verifies and 400 to
what does not, so a bad signature would show as a failed delivery too.

The retries, the refusals of private targets and the restarts are tested in the Rust
end-to-end suite (tests/e2e/webhooks.rs).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import threading
import time
import urllib.error
import urllib.request
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import multipart

#: The server's `[webhooks] secret`: the single user's and every tenant's without its own.
DEFAULT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#: `[tenants.alice] webhook_secret`.
ALICE_SECRET = "whsec_QWxpY2UncyBvd24gc2lnbmluZyBrZXkhIQ=="
KEYS = {"alice": "alice-key", "bob": "bob-key"}
SECRETS = {"alice": ALICE_SECRET, "bob": DEFAULT_SECRET}


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies each POST with the secret its path
    names (`/alice`, `/bob`) and keeps what it got."""

    def __init__(self):
        self.got: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name: value for name, value in self.headers.items()}
                tenant = self.path.strip("/")
                try:
                    payload = Webhook(SECRETS[tenant]).verify(body, headers)
                    error = None
                except (WebhookVerificationError, KeyError) as e:
                    payload, error = None, repr(e)
                with receiver.lock:
                    receiver.got.append(
                        {"tenant": tenant, "headers": headers, "body": body,
                         "payload": payload, "error": error}
                    )
                self.send_response(400 if error else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= count:
                    return list(self.got)
            time.sleep(0.05)
        pytest.fail(f"the receiver got {len(self.got)} deliveries, not {count}: {self.got}")

    def stop(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def hooks_server(make_server):
    keys = "".join(
        f'[[api_keys]]\nsha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
        f'tenant = "{tenant}"\nrole = "user"\n'
        for tenant, key in KEYS.items()
    )
    config = (
        keys
        + f'[webhooks]\nsecret = "{DEFAULT_SECRET}"\nallow_private = true\n'
        + "retry_base_seconds = 0.05\n"
        + f'[tenants.alice]\nwebhook_secret = "{ALICE_SECRET}"\n'
    )
    return make_server(["echo", "trap", "slow"], config)


def tone() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / 16000)))
            for n in range(16000)
        ))
    return out.getvalue()


def call(server, method: str, path: str, tenant: str, body: bytes | None = None,
         content_type: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(server.base_url + path, method=method, data=body)
    request.add_header("Authorization", f"Bearer {KEYS[tenant]}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def submit(server, tenant: str, plugin: str, config: dict, callback: str) -> str:
    content_type, body = multipart(
        {"plugin": plugin, "config": json.dumps(config), "callback_url": callback}, tone(), "tone.wav"
    )
    status, job = call(server, "POST", "/api/jobs", tenant, body, content_type)
    assert status == 202, (status, job)
    return job["id"]


def settled_delivery(server, tenant: str, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, reply = call(server, "GET", f"/api/jobs/{job_id}/deliveries", tenant)
        assert status == 200, (status, reply)
        found = reply["deliveries"]
        if found and found[0]["state"] != "pending":
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)
    pytest.fail(f"the delivery of {job_id} did not settle")


def test_every_ending_is_delivered_once_and_verifies_with_standardwebhooks(hooks_server, receiver):
    server = hooks_server
    url = receiver.url("/bob")
    jobs = {
        "job.done": submit(server, "bob", "echo", {}, url),
        "job.failed": submit(server, "bob", "trap", {}, url),
        "job.cancelled": submit(server, "bob", "slow", {"steps": 200, "step_ms": 100}, url),
    }
    status, _ = call(server, "POST", f"/api/jobs/{jobs['job.cancelled']}/cancel", "bob", b"")
    assert status == 200

    for kind, job_id in jobs.items():
        delivery = settled_delivery(server, "bob", job_id)
        assert delivery["state"] == "delivered", delivery
        assert delivery["type"] == kind
        assert [a["status"] for a in delivery["attempts"]] == [204], delivery
    got = receiver.wait_for(3)
    time.sleep(0.5)
    assert len(receiver.got) == 3, receiver.got

    for request in got:
        assert request["error"] is None, request
        payload = request["payload"]
        job_id = payload["data"]["job_id"]
        # Exactly one delivery per job, and it is that job's terminal event.
        assert [r["payload"]["data"]["job_id"] for r in got].count(job_id) == 1
        assert jobs[payload["type"]] == job_id, payload
        assert payload["data"]["links"]["job"] == f"/api/jobs/{job_id}"
        assert request["headers"]["webhook-id"].startswith("msg_")
        # Another tenant's secret does not verify it, nor does a changed body.
        with pytest.raises(WebhookVerificationError):
            Webhook(ALICE_SECRET).verify(request["body"], request["headers"])
        tampered = request["body"].replace(b'"data"', b'"Data"')
        with pytest.raises(WebhookVerificationError):
            Webhook(DEFAULT_SECRET).verify(tampered, request["headers"])

    done = next(r["payload"] for r in got if r["payload"]["type"] == "job.done")
    assert done["data"]["status"] == "completed"
    assert done["data"]["result_id"] == jobs["job.done"]
    status, result = call(server, "GET", done["data"]["links"]["result"], "bob")
    assert status == 200 and result["id"] == jobs["job.done"], result
    failed = next(r["payload"] for r in got if r["payload"]["type"] == "job.failed")
    assert failed["data"]["status"] == "failed"
    assert failed["data"]["error"]["kind"], failed
    cancelled = next(r["payload"] for r in got if r["payload"]["type"] == "job.cancelled")
    assert cancelled["data"]["status"] == "cancelled"


def test_a_tenants_own_secret_signs_its_deliveries(hooks_server, receiver):
    server = hooks_server
    job_id = submit(server, "alice", "echo", {}, receiver.url("/alice"))
    assert settled_delivery(server, "alice", job_id)["state"] == "delivered"
    (request,) = receiver.wait_for(1)
    assert request["error"] is None, request
    assert request["payload"]["data"]["job_id"] == job_id
    with pytest.raises(WebhookVerificationError):
        Webhook(DEFAULT_SECRET).verify(request["body"], request["headers"])
