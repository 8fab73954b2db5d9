"""A client that goes away cancels its job (`[openai] cancel_on_disconnect`)."""

import json
import socket
import time

import pytest

from conftest import multipart


@pytest.fixture(scope="module")
def audio(speech):
    return (speech / "goforward.wav").read_bytes()


def start_request(server, audio, model="spin", stream=False) -> socket.socket:
    """Sends a whole transcription request on a raw socket and leaves it waiting."""
    content_type, body = multipart(
        {"model": model, "stream": "true" if stream else "false"}, audio
    )
    host, port = server.address.rsplit(":", 1)
    connection = socket.create_connection((host, int(port)), timeout=10)
    connection.sendall(
        (
            "POST /v1/audio/transcriptions HTTP/1.1\r\n"
            f"Host: {server.address}\r\n"
            "Authorization: Bearer sk-test\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    return connection


def running_job(server, plugin="spin", timeout=10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [j for j in server.active_jobs(plugin) if j["status"] == "running"]
        if jobs:
            return jobs[0]
        time.sleep(0.05)
    pytest.fail("the request's job never started running")


@pytest.mark.parametrize("stream", [False, True], ids=["waiting", "streaming"])
def test_disconnect_cancels_the_job(make_server, audio, stream):
    server = make_server(["spin"])
    connection = start_request(server, audio, stream=stream)
    job = running_job(server)
    if stream:
        # The event stream has begun: the response head is there.
        assert connection.recv(4096).startswith(b"HTTP/1.1 200")
    connection.close()
    started = time.monotonic()
    job = server.wait_job(job["id"], {"cancelled"}, timeout=10)
    assert job["status"] == "cancelled", job
    assert time.monotonic() - started < 5


def test_disconnect_leaves_the_job_running_when_configured(make_server, audio):
    server = make_server(["spin"], "[openai]\ncancel_on_disconnect = false\n")
    connection = start_request(server, audio)
    job = running_job(server)
    connection.close()
    time.sleep(1.0)
    assert server.get_json(f"/api/jobs/{job['id']}")["status"] == "running"
    status, body = server.post(f"/api/jobs/{job['id']}/cancel")
    assert status == 200 and json.loads(body)["status"] == "cancelled"


def test_finished_request_does_not_cancel_anything(make_server, audio):
    server = make_server(["echo"])
    connection = start_request(server, audio, model="echo")
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        reply += chunk
    connection.close()
    assert reply.startswith(b"HTTP/1.1 200")
    job_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in reply.split(b"\r\n")
        if line.lower().startswith(b"x-request-id:")
    )
    time.sleep(0.3)
    assert server.get_json(f"/api/jobs/{job_id}")["status"] == "completed"
