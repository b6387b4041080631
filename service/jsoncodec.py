"""JSON bodies in and out: orjson, with the standard library's rules kept.

loads refuses duplicate keys and absurd nesting, as json.loads with an
object_pairs_hook would, and decodes what the standard library decodes (UTF-16,
NaN literals, 1e400, integers past 64 bits, which orjson would make floats) by
falling back to it. dumps writes compact JSON, NumPy arrays included.
"""

import json
import sys
from collections import Counter

import orjson

_DUMPS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
# Every digit becomes "0", "." stays, every other byte "x": an integer of 20 digits or more
# (past 64 bits, perhaps) shows as "x" and 20 zeros; a fraction's digits follow a ".".
_DIGITS = bytes(48 if chr(b).isdigit() and b < 128 else b if b == 46 else 120
                for b in range(256))
_LONG_INTEGER = b"x" + b"0" * 20


def loads(raw: bytes):
    """Return the decoded document; ValueError for bad syntax, encoding or a duplicate key."""
    # orjson parses numbers 5-10x faster than json (benchmarks/RESULTS.md, "JSON codec");
    # it keeps the last of duplicate keys, so a body is taken from it only when no key
    # can have been repeated: every ':' outside a string separates one key from its value,
    # so as many ':' bytes as keys decoded means no repeats (and no ':' inside a string).
    shape = raw.translate(_DIGITS)
    if _LONG_INTEGER in shape or shape.startswith(_LONG_INTEGER[1:]):  # orjson: a float
        return _loads_plain(raw)
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
    except ValueError as exc:
        raise ValueError(plain_reason(exc)) from None


def plain_reason(exc):
    """Return why a JSON document was refused (a ValueError of json), as a client may read
    it: the interpreter's bound on an integer's digits says how to lift it, not the client's."""
    if "integer string conversion" in str(exc):
        return f"an integer of over {sys.get_int_max_str_digits()} digits"
    return str(exc)


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
