"""`stream=true`: Server-Sent Events in OpenAI's transcription event shapes."""

import json

import openai
import pytest

from conftest import WHISPER


@pytest.fixture(scope="module")
def audio(speech):
    return (speech / "goforward.wav").read_bytes()


def stream_events(client, audio, **params):
    params.setdefault("model", "slow")
    return list(
        client.audio.transcriptions.create(file=("goforward.wav", audio), stream=True, **params)
    )


def test_deltas_as_segments_arrive_then_one_done_with_their_concatenation(client, audio):
    events = stream_events(client, audio)  # slow: ten segments "step 1" … "step 10"
    assert all(
        isinstance(
            e,
            (openai.types.audio.TranscriptionTextDeltaEvent, openai.types.audio.TranscriptionTextDoneEvent),
        )
        for e in events
    )
    *deltas, done = events
    assert [e.type for e in deltas] == ["transcript.text.delta"] * 10
    assert done.type == "transcript.text.done"
    assert done.text == "".join(e.delta for e in deltas)
    assert done.text == " ".join(f"step {i}" for i in range(1, 11))


def test_streamed_text_equals_the_json_text(client, audio):
    *deltas, done = stream_events(client, audio, model="echo")
    assert done.text == "".join(e.delta for e in deltas)
    json_text = client.audio.transcriptions.create(file=("a.wav", audio), model="echo").text
    assert done.text == json_text


def test_stream_with_text_format_is_the_same_stream(client, audio):
    *deltas, done = stream_events(client, audio, model="echo", response_format="text")
    assert done.text == "".join(e.delta for e in deltas) and len(deltas) == 3


def test_every_data_line_is_json_in_openai_shapes(client, audio):
    with client.audio.transcriptions.with_streaming_response.create(
        file=("a.wav", audio), model="slow", stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        lines = list(response.iter_lines())
    data = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data:")]
    assert len(data) == 11
    for event in data[:-1]:
        assert list(event) == ["type", "delta"] and event["type"] == "transcript.text.delta"
    assert list(data[-1]) == ["type", "text"]
    # No ids: the Python client would otherwise read heartbeats as empty events.
    assert not [line for line in lines if line.startswith(("id:", "event:"))]
    for line in lines:
        assert line == "" or line.startswith(("data: ", ":")), line


def test_whisper_streams_real_speech(client, speech):
    audio = (speech / "librivox-0890.wav").read_bytes()
    *deltas, done = stream_events(client, audio, model=WHISPER)
    assert deltas and done.text == "".join(e.delta for e in deltas)
    json_text = client.audio.transcriptions.create(file=("a.wav", audio), model=WHISPER).text
    assert done.text == json_text


def test_stream_is_refused_for_formats_with_timings(client, audio):
    for response_format in ("srt", "vtt", "verbose_json"):
        with pytest.raises(openai.BadRequestError) as caught:
            stream_events(client, audio, response_format=response_format)
        assert caught.value.param == "stream"


def test_a_job_that_fails_ends_the_stream_with_an_error_event(make_server, speech):
    server = make_server(["trap"])
    audio = (speech / "goforward.wav").read_bytes()
    with pytest.raises(openai.APIError) as caught:
        stream_events(server.client(), audio, model="trap")
    assert "failed" in str(caught.value)
    assert caught.value.body["code"] == "plugin_trap"
