"""`GET /v1/models` and `GET /v1/models/{id}` through OpenAI's client."""

import openai
import pytest

from conftest import WHISPER


def test_models_list_the_loaded_plugins_in_openai_shape(client, server):
    models = client.models.list()
    ids = [model.id for model in models]
    loaded = [p["id"] for p in server.get_json("/api/plugins")["plugins"]]
    assert sorted(ids) == sorted(loaded)
    assert {WHISPER, "echo"} <= set(ids)
    for model in models:
        assert model.object == "model"
        assert model.owned_by == "sandscribe"
        assert model.created > 1_600_000_000


def test_one_model_by_id(client):
    model = client.models.retrieve("echo")
    assert (model.id, model.object) == ("echo", "model")


def test_unknown_model_is_not_found_with_openai_envelope(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("whisper-1")
    error = caught.value
    assert error.status_code == 404
    assert error.code == "model_not_found"
    assert error.param == "model"
    assert error.type == "invalid_request_error"
    assert "whisper-1" in error.message


def test_any_bearer_key_or_none_is_accepted(server):
    import urllib.request

    for headers in ({}, {"Authorization": "Bearer sk-whatever"}, {"Authorization": "Basic x"}):
        request = urllib.request.Request(server.base_url + "/v1/models", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
