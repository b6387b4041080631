"""JSON bodies in and out: orjson, with the standard library's rules kept.

loads refuses duplicate keys and absurd nesting, as json.loads with an
object_pairs_hook would, and accepts what the standard library accepts (UTF-16,
NaN literals, 1e400) by falling back to it; an integer past 64 bits becomes a float
(past every limit all the same). dumps writes compact JSON, NumPy arrays included.
"""

import json
from collections import Counter

import orjson

_DUMPS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def loads(raw: bytes):
    """Return the decoded document; ValueError for bad syntax, encoding or a duplicate key."""
    # orjson parses numbers 5-10x faster than json (benchmarks/RESULTS.md, "JSON codec");
    # it keeps the last of duplicate keys, so a body is taken from it only when no key
    # can have been repeated: every ':' outside a string separates one key from its value,
    # so as many ':' bytes as keys decoded means no repeats (and no ':' inside a string).
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _loads_plain(raw)
    if raw.count(b":") == _keys(doc, raw.count(b"{")):
        return doc
    return _loads_plain(raw)


def _keys(doc, braces):
    """Return how many keys the objects of doc hold (a top-level object alone: its own)."""
    if type(doc) is dict and braces == 1:  # the only '{', so the only object
        return len(doc)
    count, stack = 0, [doc]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            count += len(item)
            stack.extend(v for v in item.values() if type(v) in (dict, list))
        elif type(item) is list:
            stack.extend(v for v in item if type(v) in (dict, list))
    return count


def _loads_plain(raw: bytes):
    """Return json.loads(raw) refusing duplicate keys (the path orjson defers to)."""
    try:
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except RecursionError as exc:  # nesting past the stack
        raise ValueError(str(exc)) from None


def dumps(body) -> bytes:
    """Return body as compact JSON bytes (NaN and infinities become null, as orjson writes)."""
    try:
        return orjson.dumps(body, option=_DUMPS)
    except orjson.JSONEncodeError:  # an integer past 64 bits, a subclass orjson refuses
        return _ENCODER.encode(body).encode()


def _no_duplicates(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        dup = next(k for k, count in Counter(k for k, _ in pairs).items() if count > 1)
        raise ValueError(f"duplicate key {dup!r} in an object")
    return obj


def _plain(value):
    if hasattr(value, "tolist"):  # a NumPy array or scalar
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_plain)
