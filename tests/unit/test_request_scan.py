"""RequestScan: where a request ends, fed all at once and one byte at a time."""

import pytest

from service.request_scan import RequestScan

HEAD = b"POST /p HTTP/1.1\r\nHost: x\r\n"


def scan(data, max_head=8192, max_body=1000, step=None):
    """Return the scan after feeding data (in pieces of step bytes) while it is not done,
    and how many bytes it took."""
    s = RequestScan(max_head, max_body)
    step = step or len(data) or 1
    taken = 0
    while taken < len(data) and not s.done:
        s.feed(data[taken:taken + step])
        taken += step
    return s, min(taken, len(data))


COMPLETE = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\n\r\n",  # one empty line before the request line
    HEAD + b"Content-Length: 5\r\n\r\nhello",
    HEAD + b"content-length: 0\r\n\r\n",
    HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    HEAD + b"Transfer-Encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n" + b"x" * 16
    + b"\r\n0\r\nTrailer: t\r\n\r\n",
]


@pytest.mark.parametrize("step", [None, 1, 3])
@pytest.mark.parametrize("request_bytes", COMPLETE)
def test_a_complete_request_is_whole_at_its_last_byte(request_bytes, step):
    s, taken = scan(request_bytes + b"GET /next HTTP/1.1\r\n", step=step)
    assert s.done and s.whole
    assert taken >= len(request_bytes) and taken - len(request_bytes) < (step or 10**6)
    short, _ = scan(request_bytes[:-1], step=step)
    assert not short.done


@pytest.mark.parametrize("request_bytes", COMPLETE)
def test_bytes_past_the_end_are_a_pipelined_request_ahead(request_bytes):
    alone, _ = scan(request_bytes)
    assert alone.done and not alone.ahead
    together, _ = scan(request_bytes + b"G")
    assert together.done and together.ahead
    later, _ = scan(request_bytes, step=1)
    later.feed(b"")
    assert not later.ahead
    later.feed(b"G")
    assert later.ahead


@pytest.mark.parametrize("request_bytes", [
    HEAD + b"Content-Length: 1001\r\n\r\n",  # over the body limit: the app's 413 at once
    HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
    HEAD + b"Content-Length: -1\r\n\r\n",
    HEAD + b"Transfer-Encoding: gzip\r\n\r\n",
    HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",  # gunicorn's 400 for the chunk size
    HEAD + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n",
    HEAD + b"Transfer-Encoding: chunked\r\n\r\n3e9\r\n",  # decoded body over the limit
    b"GET / HTTP/1.1\nHost: x",  # a bare LF: gunicorn refuses it, there is no end to wait for
    b"GET /" + b"a" * 9000,  # a head over its limit
])
@pytest.mark.parametrize("step", [None, 1])
def test_what_gunicorn_refuses_is_handed_over_at_once_as_it_is(request_bytes, step):
    s, _ = scan(request_bytes, step=step)
    assert s.done and not s.whole


@pytest.mark.parametrize("codings", [b"gzip, chunked", b"GZIP ,chunked", b"deflate, chunked",
                                     b"identity, chunked", b"gzip\r\nTransfer-Encoding: chunked"])
@pytest.mark.parametrize("step", [None, 1])
def test_a_coding_nothing_decodes_before_chunked_is_refused_from_its_head(codings, step):
    # gunicorn lets it stand and hands the app the bytes undecoded (or, past one read, a
    # body cut short): the worker refuses it instead, whatever the body
    s, taken = scan(HEAD + b"Transfer-Encoding: " + codings + b"\r\n\r\n5\r\nhello\r\n",
                    step=step)
    assert s.done and not s.whole
    assert s.undecoded == b", ".join(c.strip() for c in codings.lower()
                                    .replace(b"\r\ntransfer-encoding:", b",").split(b","))


@pytest.mark.parametrize("codings", [b"chunked", b"chunked, gzip", b"chunked, chunked",
                                     b"bogus, chunked", b"gzip"])
def test_only_a_coding_gunicorn_would_let_through_is_marked(codings):
    s, _ = scan(HEAD + b"Transfer-Encoding: " + codings + b"\r\n\r\n")
    assert s.undecoded is None  # chunked alone is read; the rest gunicorn refuses (400/501)


def test_100_continue_is_expected_only_while_an_http_11_body_is_awaited():
    s, _ = scan(HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhe")
    assert s.expects_continue and not s.done
    s.feed(b"llo")
    assert s.done and not s.expects_continue
    old, _ = scan(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert not old.expects_continue
    none, _ = scan(HEAD + b"Expect: 100-continue\r\n\r\n")
    assert none.done and not none.expects_continue


def test_a_half_closed_request_is_handed_over_as_it_is():
    s, _ = scan(HEAD + b"Content-Length: 5\r\n\r\nhe")
    assert not s.done
    s.end()
    assert s.done and not s.whole
