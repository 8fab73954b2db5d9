"""`POST /v1/audio/transcriptions` and `/v1/audio/translations` with OpenAI's client:
every response format, timestamp granularities, form-to-config mapping and errors.

The `echo` fixture describes one-second windows of the audio ("window 1 level 37"), so
its answers are known exactly; Whisper gives the real-speech checks in test_speech.py.
"""

import json

import openai
import pytest

from conftest import WHISPER, WHISPER_BASE, multipart
from subtitles import check_subtitles

# goforward.wav is 2.786 s long: echo gives three windows.
ECHO_SEGMENTS = [(0.0, 1.0), (1.0, 2.0), (2.0, 2.786)]


@pytest.fixture(scope="module")
def audio(speech):
    return (speech / "goforward.wav").read_bytes()


def transcribe(client, audio, **params):
    params.setdefault("model", "echo")
    return client.audio.transcriptions.create(file=("goforward.wav", audio), **params)


def raw(client, audio, **params):
    """The HTTP response itself (status, headers, body)."""
    params.setdefault("model", "echo")
    return client.audio.transcriptions.with_raw_response.create(
        file=("goforward.wav", audio), **params
    )


def test_json_is_text_only(client, audio):
    result = transcribe(client, audio)
    assert isinstance(result, openai.types.audio.Transcription)
    words = result.text.split(" ")
    assert words[:3] == ["window", "1", "level"] and result.text.count("window") == 3
    assert result.usage.type == "duration" and result.usage.seconds == 3


def test_verbose_json_has_segments_with_every_openai_field(client, audio, server):
    result = transcribe(client, audio, response_format="verbose_json")
    assert isinstance(result, openai.types.audio.TranscriptionVerbose)
    assert result.duration == pytest.approx(2.786)
    assert result.language == "unknown"  # echo reports none unless configured
    assert [(s.start, s.end) for s in result.segments] == ECHO_SEGMENTS
    assert [s.id for s in result.segments] == [0, 1, 2]
    assert result.text == " ".join(s.text for s in result.segments)
    assert result.words is None
    body = raw(client, audio, response_format="verbose_json").http_response.json()
    assert body["task"] == "transcribe"
    for segment in body["segments"]:
        assert set(segment) == {
            "id", "seek", "start", "end", "text", "tokens", "temperature",
            "avg_logprob", "compression_ratio", "no_speech_prob",
        }
        assert segment["tokens"] == []
        assert segment["avg_logprob"] == 0.0  # echo's confidence 1.0


@pytest.mark.parametrize(
    "response_format, content_type",
    [("text", "text/plain"), ("srt", "application/x-subrip"), ("vtt", "text/vtt")],
)
def test_file_formats_are_raw_text_with_their_content_type(client, audio, response_format, content_type):
    response = raw(client, audio, response_format=response_format)
    assert response.headers["content-type"] == f"{content_type}; charset=utf-8"
    body = response.parse()
    assert isinstance(body, str)
    assert not body.startswith('"'), "not JSON-quoted"
    if response_format == "text":
        assert body.splitlines() == [line for line in body.splitlines() if line.startswith("window")]
        assert len(body.splitlines()) == 3 and body.endswith("\n")


def test_srt_and_vtt_parse_and_agree_with_verbose_json(client, audio):
    srt_text = transcribe(client, audio, response_format="srt")
    vtt_text = transcribe(client, audio, response_format="vtt")
    cues = check_subtitles(srt_text, vtt_text)
    verbose = transcribe(client, audio, response_format="verbose_json")
    assert [(c.start_ms, c.end_ms, " ".join(c.lines)) for c in cues] == [
        (round(s.start * 1000), round(s.end * 1000), s.text) for s in verbose.segments
    ]


def test_word_granularity_gives_words(client, audio):
    result = transcribe(
        client, audio, response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert result.segments is None, "only what was asked for"
    # Four words per window ("window 1 level 37"), three windows.
    assert len(result.words) == 12
    assert [w.word for w in result.words[:3]] == ["window", "1", "level"]
    assert " ".join(w.word for w in result.words) == transcribe(client, audio).text
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= 2.786 for w in result.words)


def test_both_granularities_give_segments_and_words(client, audio):
    result = transcribe(
        client,
        audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert len(result.segments) == 3 and len(result.words) == 12
    assert result.words[0].start == result.segments[0].start


def test_language_maps_onto_the_plugin_config(client, audio, server):
    response = raw(client, audio, language="de", response_format="verbose_json")
    assert response.parse().language == "german"
    job = server.get_json(f"/api/jobs/{response.headers['x-request-id']}")
    assert job["config"]["language"] == "de"


def test_prompt_and_temperature_map_onto_whisper_config(client, audio, server):
    response = raw(
        client,
        audio,
        model=WHISPER,
        language="en",
        prompt="Go forward.",
        temperature=0.0,
        response_format="verbose_json",
    )
    result = response.parse()
    assert result.language == "english"
    assert all(s.temperature == 0.0 for s in result.segments)
    config = server.get_json(f"/api/jobs/{response.headers['x-request-id']}")["config"]
    assert config["initial_prompt"] == "Go forward."
    assert config["language"] == "en" and config["temperature"] == 0.0
    assert config["task"] == "transcribe"


def test_requests_are_jobs_in_the_tracker_and_the_history(client, audio, server):
    response = raw(client, audio, response_format="json")
    job_id = response.headers["x-request-id"]
    job = server.get_json(f"/api/jobs/{job_id}")
    assert job["status"] == "completed" and job["plugin"]["id"] == "echo"
    stored = server.get_json(f"/api/results/{job_id}")
    assert stored["transcript"]["text"] == response.parse().text
    history = server.get_json("/api/results?per_page=100")["items"]
    assert job_id in [item["id"] for item in history]


# ---- errors ----------------------------------------------------------------------------


def bad_request(client, audio, param, **params):
    with pytest.raises(openai.BadRequestError) as caught:
        transcribe(client, audio, **params)
    error = caught.value
    assert error.status_code == 400
    assert error.param == param, error.body
    assert error.type == "invalid_request_error"
    assert error.message
    return error


def test_unknown_model_is_not_found(client, audio):
    with pytest.raises(openai.NotFoundError) as caught:
        transcribe(client, audio, model="whisper-1")
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


def test_words_from_a_plugin_without_word_timings_are_refused(client, audio):
    bad_request(
        client, audio, "timestamp_granularities",
        model="slow", response_format="verbose_json", timestamp_granularities=["word"],
    )


def test_whisper_times_each_word_when_asked(client, audio):
    result = transcribe(
        client, audio, model=WHISPER, response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    words = [w.word.strip().strip(".,!?").lower() for w in result.words]
    assert " ".join(w.word.strip() for w in result.words) == result.text.strip(), result.words
    assert "forward" in words, result.words
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= 2.786 for w in result.words)
    # Where "forward" begins in the audio (its energy onset, see the plugin's speech tests).
    forward = result.words[words.index("forward")]
    assert abs(forward.start - 0.64) <= 0.3, forward


def test_granularities_need_verbose_json(client, audio):
    bad_request(client, audio, "timestamp_granularities", timestamp_granularities=["segment"])


def test_settings_the_plugin_does_not_have_are_refused_by_name(client, audio):
    bad_request(client, audio, "temperature", temperature=0.2)  # echo has no temperature
    bad_request(client, audio, "language", model="slow", language="en")
    bad_request(client, audio, "prompt", model="slow", prompt="hello")


def test_values_the_plugin_schema_refuses_name_the_field(client, audio):
    error = bad_request(client, audio, "language", language="xx")  # echo: en, de, fr
    assert error.code == "invalid_config"
    bad_request(client, audio, "language", model=WHISPER, language="de")  # English-only
    bad_request(client, audio, "temperature", model=WHISPER, temperature=1.5)


def test_unknown_format_and_fields_are_refused(client, audio):
    bad_request(client, audio, "response_format", response_format="diarized_json")
    bad_request(client, audio, "include[]", include=["logprobs"])
    bad_request(client, audio, "stream", response_format="srt", stream=True)


def test_undecodable_file_is_415_api_status_error(client):
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(file=("notes.wav", b"these are not samples"), model="echo")
    error = caught.value
    # No subclass of its own in the client: a plain APIStatusError.
    assert type(error) is openai.APIStatusError
    assert error.status_code == 415
    assert error.param == "file"
    assert error.code == "undecodable_audio"


def test_error_bodies_use_the_openai_envelope(client, audio):
    response = client.audio.transcriptions.with_raw_response
    with pytest.raises(openai.BadRequestError) as caught:
        response.create(file=("a.wav", audio), model="echo", response_format="yaml")
    body = caught.value.response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["message", "type", "param", "code"]


def test_too_large_upload_is_413(make_server, speech):
    server = make_server(["echo"], "[limits]\nupload_bytes = 100000\n")
    client = server.client()
    big = (speech / "librivox-0870.wav").read_bytes()  # 227 kB
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(file=("big.wav", big), model="echo")
    assert caught.value.status_code == 413
    assert caught.value.code == "too_large"
    # Below the limit all is well.
    small = (speech / "goforward.wav").read_bytes()  # 89 kB
    assert client.audio.transcriptions.create(file=("small.wav", small), model="echo").text


def test_full_queue_is_429_rate_limit_error(make_server, audio):
    server = make_server(["echo", "spin"], "[jobs]\nmax_running = 1\nmax_queued = 1\n")
    client = server.client()
    # Fill the only slot and the only queue place through the JSON API.
    spinning = [submit_json_api(server, "spin", audio) for _ in range(2)]
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            client.audio.transcriptions.create(file=("a.wav", audio), model="echo")
        assert caught.value.status_code == 429
        assert caught.value.code == "queue_full"
    finally:
        for job_id in spinning:
            server.post(f"/api/jobs/{job_id}/cancel")


def submit_json_api(server, plugin, audio) -> str:
    """Submits a job through POST /api/jobs (stdlib multipart)."""
    import urllib.request

    content_type, body = multipart({"plugin": plugin}, audio)
    request = urllib.request.Request(
        server.base_url + "/api/jobs", data=body, headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["id"]


# ---- translations ----------------------------------------------------------------------


# The client marks translations deprecated (OpenAI's newer models translate otherwise).
pytestmark_translations = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@pytestmark_translations
def test_translation_needs_a_plugin_that_can_translate(client, audio):
    for model in ("echo", WHISPER):
        with pytest.raises(openai.BadRequestError) as caught:
            client.audio.translations.create(file=("a.wav", audio), model=model)
        assert caught.value.param == "model"
        assert "cannot translate" in caught.value.message


@pytestmark_translations
def test_translation_with_a_multilingual_whisper(client, audio, server):
    if WHISPER_BASE not in [m.id for m in client.models.list()]:
        pytest.skip(f"{WHISPER_BASE} is not installed (cargo xtask setup --models base)")
    response = client.audio.translations.with_raw_response.create(
        file=("goforward.wav", audio), model=WHISPER_BASE, response_format="verbose_json"
    )
    result = response.parse()
    assert "forward" in result.text.lower()
    assert response.http_response.json()["task"] == "translate"
    config = server.get_json(f"/api/jobs/{response.headers['x-request-id']}")["config"]
    assert config["task"] == "translate"


def test_failed_job_is_a_server_error_the_client_does_not_retry(make_server, audio):
    server = make_server(["trap"])
    with pytest.raises(openai.InternalServerError) as caught:
        server.client(max_retries=2).audio.transcriptions.create(file=("a.wav", audio), model="trap")
    error = caught.value
    assert error.status_code == 500 and error.code == "plugin_trap"
    assert error.response.headers["x-should-retry"] == "false"
    # The job id comes along, so the failed job can be looked up.
    job = server.get_json(f"/api/jobs/{error.request_id}")
    assert job["status"] == "failed"
    assert server.log_tail(10_000).count("job queued") == 1, "retried"
