"""The JSON codec: orjson's fast path decodes exactly what the standard library's rules allow."""

import json
import random
import sys
from collections import Counter

import numpy as np
import pytest

from service import jsoncodec


def _plain(raw):
    """Return what json.loads with a duplicate-refusing hook makes of raw, or its error."""

    def no_duplicates(pairs):
        counts = Counter(k for k, _ in pairs)
        if max(counts.values(), default=1) > 1:
            raise ValueError("duplicate")
        return dict(pairs)

    try:
        return json.loads(raw, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError):
        return ValueError


def _fast(raw):
    try:
        return jsoncodec.loads(raw)
    except ValueError:
        return ValueError


BODIES = [
    b'{"points": [[0.1, 0.2], [3, -4e-7]]}',
    b'{"model": "a", "model": "b"}',
    b'{"points": [{"x1": 1, "x2": 2, "x1": 3}]}',
    b'{"points": [{"x1": 1, "x2": 2}, {"x1": 3, "x2": 4}]}',
    b'{"a": {"b": 1, "c": {"d": 2, "d": 3}}}',
    b'{"a": "x:y", "a": 1}',  # a duplicate hidden beside a colon in a string
    b'{"time": "04:53:06", "n": 1}',
    b'{"big": 123456789012345678901234567890}',
    b'{"a:b": 1, "c": [1, 2, {"e": null}]}',
    b'[{"a": 1}, {"a": 1, "a": 2}]',
    b'[{"a": 1}, {"b": 2}]',
    b'{"x": NaN, "y": Infinity}',
    b'{"deep": 1e400}',
    '{"utf16": "é"}'.encode("utf-16"),
    b'\xef\xbb\xbf{"bom": 1}',
    b'"\\ud800"',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"{",
    b"",
    b"\xff\xfe{}",
    b'{"a": 1,}',
    b'"{"',
    b"{}",
    b"[]",
    b"3.5",
]


@pytest.mark.parametrize("raw", BODIES)
def test_loads_agrees_with_the_standard_library(raw):
    assert repr(_fast(raw)) == repr(_plain(raw))  # repr: NaN equals no NaN


@pytest.mark.parametrize("raw", [b'{"n": 123456789012345678901234567890}',
                                 b"[18446744073709551616, -99999999999999999999]",
                                 b"[18446744073709551615, 0.00012345678901234567891]",
                                 b'{"id": "123456789012345678901", "e": 1e1234567890123456789}',
                                 b"123456789012345678901", b" -123456789012345678901"])
def test_integers_past_64_bits_stay_integers(raw):
    assert repr(_fast(raw)) == repr(_plain(raw))


def test_loads_agrees_on_random_documents_with_and_without_repeated_keys():
    rng = random.Random(7)

    def make(depth):
        kind = rng.random()
        if depth > 3 or kind < 0.3:
            return rng.choice([1, -2.5, "s", "a:b", "{", None, True, 1e-300])
        if kind < 0.6:
            return [make(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice("abc:{") + str(i): make(depth + 1) for i in range(rng.randint(0, 4))}

    for _ in range(400):
        text = json.dumps(make(0))
        if rng.random() < 0.5 and '": ' in text:  # repeat one key of one object, maybe
            at = text.index('": ')
            start = text.rindex('"', 0, at)
            key = text[start:at + 1]
            text = text[:start] + key + ": 0, " + text[start:]
        raw = text.encode()
        assert _fast(raw) == _plain(raw), raw


def test_dumps_writes_compact_json_numpy_and_what_orjson_refuses():
    body = {"a": [1, 2.5], 3: "x", "big": 2**70, "arr": np.array([0.5, 1.0]),
            "f32": np.array([0.1], np.float32), "i": np.int64(4)}

    out = json.loads(jsoncodec.dumps(body))

    assert out == {"a": [1, 2.5], "3": "x", "big": 2**70, "arr": [0.5, 1.0],
                   "f32": [pytest.approx(0.1, rel=1e-7)], "i": 4}
    assert jsoncodec.dumps({"a": [1, {"b": None}]}) == b'{"a":[1,{"b":null}]}'
    assert np.float32(json.loads(jsoncodec.dumps(np.array([0.1], np.float32)))[0]) == \
        np.float32(0.1)


def test_an_integer_past_the_interpreters_digit_bound_is_named_without_its_advice():
    # was "Exceeds the limit (4300 digits) for integer string conversion ... use
    # sys.set_int_max_str_digits() to increase the limit", in a client's 400
    with pytest.raises(ValueError) as caught:
        jsoncodec.loads(b'{"x1": ' + b"1" * 5000 + b', "x2": 0}')
    assert str(caught.value) == f"an integer of over {sys.get_int_max_str_digits()} digits"
