"""The worker's spool: a request's bytes read back the same from memory or from disk, and
gunicorn's parser reading them meets the end of the data, never the socket."""

import pytest

from service.gunicorn_worker import RECV_SIZE, Spool, SpoolUnreader

PIECES = [b"POST / HTTP/1.1\r\n", b"Content-Length: 5\r\n\r\nhel", b"lo", b"GET /next"]


@pytest.mark.parametrize("roll_after", [None, 0, 2])
def test_an_unreader_reads_back_what_was_spooled_then_the_end(roll_after):
    spool = Spool()
    for i, piece in enumerate(PIECES):
        if i == roll_after:
            spool.rollover()
        spool.write(piece)
    unreader = SpoolUnreader()
    unreader.load(spool)
    head = unreader.read(len(b"".join(PIECES[:2])) - 3)
    assert head.endswith(b"\r\n\r\n")
    assert unreader.read(5) == b"hello"
    unreader.keep_rest()  # the start of a pipelined request stays for the next parse
    assert unreader.spool is None and unreader.take_buffered() == b"GET /next"
    assert unreader.read() == b"" and unreader.read(10) == b""


def test_a_rolled_over_spool_is_read_in_pieces_of_the_size_asked():
    spool = Spool()
    spool.rollover()
    spool.write(b"x" * (3 * RECV_SIZE))
    spool.rewind()
    assert len(spool.read(RECV_SIZE)) == RECV_SIZE
    spool.close()
