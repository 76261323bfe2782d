"""The request lines of `runner plan --json`: compact JSON that reads back as written."""

from __future__ import annotations

import json

import pytest

from runner.jsonlines import line_encoder


def test_a_line_is_compact_utf8_json_that_reads_back_equal() -> None:
    """Keys keep their order, text stays UTF-8 (not \\u escapes), and nothing is lost."""
    row = {"id": "a49f", "prompt": "Café «ü» \u2028 \"quoted\"\n", "seed": 7, "usd": 0.25,
           "paid": True, "reason": None, "matrix": {"ratio": "16:9", "tags": ["a", 1]}}
    line = line_encoder()(row)
    assert "\n" not in line
    assert line.startswith('{"id":"a49f","prompt":"Café «ü»')
    assert json.loads(line) == row
    assert list(json.loads(line)) == list(row)


def test_an_integer_beyond_64_bits_takes_the_standard_encoder_alike() -> None:
    """orjson refuses 2**64; the line is still written, compact, with the exact number."""
    row = {"id": "b", "matrix": {"big": 2**70, "name": "ü"}}
    line = line_encoder()(row)
    assert line == '{"id":"b","matrix":{"big":1180591620717411303424,"name":"ü"}}'
    assert json.loads(line) == row


def test_a_mapping_that_is_not_a_dict_is_written_as_the_dict_it_shows() -> None:
    """Plan rows carry a request's own body and matrix (no copies): any mapping encodes."""
    from types import MappingProxyType

    row = {"payload": MappingProxyType({"seed": 1, "big": 2**70}), "matrix": MappingProxyType({})}
    for value in (row, {"payload": MappingProxyType({"seed": 1})}):
        assert json.loads(line_encoder()(value)) == json.loads(json.dumps(value, default=dict))
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        line_encoder()({"tags": {1, 2}})
