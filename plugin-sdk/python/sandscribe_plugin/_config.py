"""Typed configuration parsing: the JSON object the host passes, as a dict or dataclass."""

import dataclasses
import json

from ._errors import BadConfig


def parse_config(text: str, config_class=None):
    """Parses the host's JSON configuration.

    An empty string counts as ``{}``. With ``config_class`` (a dataclass) the object
    becomes an instance of it: unknown fields and wrong types are a :class:`BadConfig`
    naming the field; missing fields take the dataclass defaults.
    """
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise BadConfig(f"the configuration is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise BadConfig("the configuration must be a JSON object")
    if config_class is None:
        return value
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    for name in value:
        if name not in fields:
            raise BadConfig(f"unknown field `{name}`, expected one of {', '.join(fields)}")
    for name, item in value.items():
        wanted = fields[name].type
        if isinstance(wanted, str):
            wanted = {"bool": bool, "int": int, "float": float, "str": str}.get(wanted)
        if wanted is float and isinstance(item, int) and not isinstance(item, bool):
            value[name] = float(item)
        elif wanted in (bool, int, float, str) and (
            not isinstance(item, wanted) or (wanted is int and isinstance(item, bool))
        ):
            raise BadConfig(f"`{name}`: expected {wanted.__name__}, got {json.dumps(item)}")
    return config_class(**value)
