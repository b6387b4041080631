"""Where an HTTP/1.1 request ends, judged from the bytes a client has sent so far.

The worker (gunicorn_worker.py) reads a request without a thread and hands it to one once
the scan says it is there. The scan only finds the end: gunicorn's parser still parses
and refuses what is malformed, so anything the scan cannot judge (a bad length, an unknown
transfer coding, a head or body over its limit) is handed over at once, as it is, and the
connection closes after gunicorn's answer.
"""

import re

HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
BARE_LF = re.compile(rb"(?<!\r)\n")
# The fields that frame a body (each line of a head but the first starts after a CRLF)
FIELDS = re.compile(rb"\r\n(content-length|transfer-encoding|expect):([^\r\n]*)",
                    re.IGNORECASE)
MAX_CHUNK_LINE = 8190  # gunicorn's bounds on a chunk-size line and on the trailers
MAX_TRAILERS = 8190 * 32
# Codings gunicorn lets stand before a final "chunked" and passes on undecoded: the app
# would read gzip bytes as the body, or, past what one read brings, a body cut short.
UNDECODED = {b"gzip", b"deflate", b"compress", b"identity"}


def undecoded_detail(coding):
    """Return the refusal (501) of a Transfer-Encoding nothing decodes, as a client reads it."""
    return (f"Transfer-Encoding {coding[:80]!r} is not supported: send the body as it is, "
            "chunked or with a Content-Length")


def undecoded_coding(values):
    """Return the codings of Transfer-Encoding values (each stripped and lowercased), joined,
    when a coding nothing decodes stands before a final chunked; else None."""
    codings = [c.strip() for value in values for c in value.split(b",")]
    if codings[-1] == b"chunked" and set(codings[:-1]) <= UNDECODED and codings != [b"chunked"]:
        return b", ".join(codings)
    return None


class RequestScan:
    """Fed a connection's bytes in order, says when one request has been received.

    `done` becomes true once the request is complete, or is to be handed over as it is;
    `whole` then says which, and `over_limit` whether a chunked body's sizes ran past
    max_body (refused as it is: its last chunk's data may never come). `expects_continue`
    is true while the client waits for "100 Continue" before sending the body it announced.
    `ahead` says whether bytes past the request's end were fed: the start of a pipelined
    request. `undecoded` holds a Transfer-Encoding nothing decodes (gzip, chunked, ...),
    refused as it is (501)."""

    def __init__(self, max_head, max_body):
        self.max_head, self.max_body = max_head, max_body
        self.head = bytearray()
        self.framed = False  # the head has ended and says how the body is framed
        self.done = self.whole = self.expects_continue = self.ahead = False
        self.over_limit = False
        self.undecoded = None
        self.remaining = 0  # body bytes still to come (in a chunk: its data and CRLF)
        self.chunked = False
        self.line = bytearray()  # a chunk-size line or the trailers, as they arrive
        self.in_trailers = False
        self.decoded = 0

    def feed(self, data):
        """Take the next bytes the client sent; return done."""
        if self.done:
            self.ahead = self.ahead or bool(data)
        elif not self.framed:
            self._feed_head(data)
        elif self.chunked:
            self._feed_chunked(memoryview(data))
        else:
            self._feed_length(len(data))
        return self.done

    def _feed_head(self, data):
        if not self.head and (end := data.find(b"\r\n\r\n")) >= 0:  # in one read: no copy
            return self._framed(data[:end], data[end + 4:])
        searched = max(0, len(self.head) - 3)  # a terminator may straddle the last read
        self.head += data
        end = self.head.find(b"\r\n\r\n", searched)
        if end >= 0:
            self._framed(bytes(self.head[:end]), bytes(self.head[end + 4:]))
        elif len(self.head) > self.max_head or BARE_LF.search(self.head, searched):
            self._hand_over(whole=False)  # gunicorn refuses it: 431, or 400 (bare LF)

    def _framed(self, head, rest):
        self.framed = True
        self.head.clear()
        self._frame(head)
        if rest:
            self.feed(rest)

    def _frame(self, head):
        """Read how the body is framed from head: a length, chunks, or no body."""
        fields = {}
        for name, value in FIELDS.findall(head):
            fields.setdefault(name.lower(), []).append(value.strip().lower())
        length, coding = fields.get(b"content-length"), fields.get(b"transfer-encoding")
        if coding is not None:
            self.undecoded = None if length is not None else undecoded_coding(coding)
            if length is not None or coding != [b"chunked"]:
                return self._hand_over(whole=False)  # gunicorn's 400 or 501, or ours (501)
            self.chunked = True
        elif length is not None:
            if len(length) != 1 or not length[0].isdigit():
                return self._hand_over(whole=False)
            self.remaining = int(length[0])
            if self.remaining > self.max_body:
                return self._hand_over(whole=False)  # the app's 413, before the body
            if not self.remaining:
                return self._hand_over(whole=True)
        else:
            return self._hand_over(whole=True)  # a request without a body
        # RFC 9112 2.2: one empty line may come before the request line
        request_line = head.lstrip(b"\r\n").partition(b"\r\n")[0]
        self.expects_continue = (request_line.rstrip().endswith(b"HTTP/1.1")
                                 and fields.get(b"expect") == [b"100-continue"])

    def _feed_length(self, n):
        self.remaining -= n
        if self.remaining <= 0:
            self.ahead = self.remaining < 0
            self._hand_over(whole=True)

    def _feed_chunked(self, data):
        while data and not self.done:
            if self.remaining:  # inside a chunk's data (and its CRLF)
                step = min(self.remaining, len(data))
                self.remaining -= step
                data = data[step:]
            elif self.in_trailers:
                searched = max(0, len(self.line) - 3)
                self.line += data
                data = data[:0]
                found = self.line.find(b"\r\n\r\n", searched)
                end = 2 if self.line.startswith(b"\r\n") else found + 4 if found >= 0 else 0
                if end:
                    self.ahead = len(self.line) > end
                    self._hand_over(whole=True)
                elif len(self.line) > MAX_TRAILERS:
                    self._hand_over(whole=False)
            else:
                data = self._feed_size_line(data)

    def _feed_size_line(self, data):
        """Take a chunk-size line's bytes from data; return what follows the line."""
        end = bytes(data).find(b"\n")
        self.line += data if end < 0 else data[:end + 1]
        if end < 0:
            if len(self.line) > MAX_CHUNK_LINE:
                self._hand_over(whole=False)
            return data[:0]
        size = HEX.fullmatch(bytes(self.line).partition(b";")[0].rstrip(b"\r\n\t "))
        self.line.clear()
        if size is None:
            self._hand_over(whole=False)  # gunicorn's 400 for a bad chunk size
            return data[:0]
        n = int(size.group(), 16)
        self.decoded += n
        if self.decoded > self.max_body:
            self.over_limit = True
            self._hand_over(whole=False)
        elif n == 0:
            self.in_trailers = True
        else:
            self.remaining = n + 2
        return data[end + 1:]

    def end(self):
        """The client sent all it will (it half-closed): hand over what there is."""
        if not self.done:
            self._hand_over(whole=False)

    def _hand_over(self, whole):
        self.done, self.whole, self.expects_continue = True, whole, False
