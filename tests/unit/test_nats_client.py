"""The cluster's nats-py client parses message headers exactly as nats-py does
(actorhw.cluster.nats_client), only cheaper: checked on the headers a lease's writes
carry and on blocks hypothesis makes of awkward names (whitespace of every kind inside
or around them, no colon, not ASCII, empty) and values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient

from actorhw.cluster.nats_client import Client

SPACES = " \t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"
NAME = st.text(alphabet=st.sampled_from("AbZ-_:9" + SPACES + "é"), max_size=8)
VALUE = st.text(alphabet=st.sampled_from("aZ 0:\t-é\x00"), max_size=8)


def test_the_headers_of_a_leases_writes() -> None:
    raw = b"Nats-Expected-Last-Subject-Sequence: 42\r\nKV-Operation: DEL\r\nNats-TTL:2s\r\n\r\n"
    assert (
        Client._parse_header_lines(raw)
        == NatsClient._parse_header_lines(raw)
        == {
            "Nats-Expected-Last-Subject-Sequence": "42",
            "KV-Operation": "DEL",
            "Nats-TTL": "2s",
        }
    )


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(NAME, st.sampled_from([":", ": ", "", ":\t"]), VALUE), max_size=5))
def test_any_header_block_parses_as_nats_py_parses_it(lines: list[tuple[str, str, str]]) -> None:
    raw = b"".join((n + sep + v).encode("utf-8") + b"\r\n" for n, sep, v in lines) + b"\r\n"
    assert Client._parse_header_lines(raw) == NatsClient._parse_header_lines(raw)
