"""``actorhw serve``: run a Runtime and export it as one host of a cluster."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from actorhw.api.runtime import BoardSpec, Runtime
from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.host import Host


def parse_board(text: str) -> BoardSpec:
    """``definition`` or ``name=definition`` (``rp2-pico=auto`` style names first), either
    with ``@port`` after for a board on a serial port (``mp=micropython@/dev/ttyACM0``)."""
    text, _at, port = text.partition("@")
    name, sep, definition = text.partition("=")
    if sep and definition != "auto":
        return BoardSpec(definition, name=name, port=port or None)
    return BoardSpec(name, port=port or None)


def serve(
    config: ClusterConfig,
    host: str,
    boards: Sequence[str | BoardSpec],
    *,
    boards_dirs: Sequence[Path | str] = (),
    drivers_dirs: Sequence[Path | str] = (),
    timeout: float = 30.0,
    on_ready: Callable[[Host], None] | None = None,
) -> None:
    """Bring ``boards`` up and serve them as ``host`` until SIGINT or SIGTERM."""
    specs = [parse_board(b) if isinstance(b, str) else b for b in boards]
    with Runtime.start(
        specs, boards_dirs=boards_dirs, drivers_dirs=drivers_dirs, timeout=timeout
    ) as rt:
        exporter = Host(rt, config, host)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            task = asyncio.ensure_future(exporter.serve(stop))
            ready = asyncio.ensure_future(exporter.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if ready.done() and on_ready is not None:
                on_ready(exporter)
            ready.cancel()
            await task

        asyncio.run(main())
