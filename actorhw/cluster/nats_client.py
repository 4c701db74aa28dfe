"""nats-py's client, with its message-header parser made cheaper.

Every key-value watch entry a host or a client reads carries the headers its writer
sent (a lease's create holds ``Nats-Expected-Last-Subject-Sequence``, its delete
``KV-Operation`` too), and nats-py 2.16 tests each header name for whitespace with a
Python generator over its characters: about a third of the CPU a watch entry costs
its reader.  `Client` is nats-py's client with the same parse, its name test done by
``str.split`` in C.  Imported only where nats-py is (the ``cluster`` extra).
"""

from __future__ import annotations

from nats.aio.client import Client as NatsClient


class Client(NatsClient):
    """nats-py's client; see the module's doc."""

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        """nats-py's parse of a header block (``Name: Value\\r\\n`` per line), exactly:
        names split off at the first ``:`` and stripped, a name that is not ASCII or
        holds whitespace skipped, values stripped and decoded with ``replace``."""
        out: dict[str, str] = {}
        for line in raw.split(b"\r\n"):
            if not line:
                continue
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            try:
                key = name.strip().decode("ascii")
            except UnicodeDecodeError:
                continue
            if key and key.split() != [key]:  # whitespace inside (str.isspace's)
                continue
            out[key] = value.strip().decode("utf-8", "replace")
        return out
