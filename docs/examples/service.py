"""An HTTP service that embeds the actorhw supervisor: starlette on uvicorn.

    python docs/examples/service.py [--host 127.0.0.1] [--port 8000] [--qemu]
                                    [--token TOKEN | --no-auth] [--allow-host NAME]

Every request needs ``Authorization: Bearer <token>`` (``--token``, or
``ACTORHW_SERVICE_TOKEN``; else one is made and printed on the ``listening`` line);
``--no-auth`` turns that off, and only on a loopback address. A request whose ``Host``
is not the service's own name (DNS rebinding), or whose ``Origin`` is another site
(a web page posting to localhost), is refused with 403; a POST body must be
``application/json`` (415 otherwise), so a browser cannot send one without asking.

- ``GET /health``: the runtime and every board's state.
- ``GET /devices``: every device (``?board=NAME`` for one board).
- ``POST /exec``: ``{"board": "microbit-qemu", "code": "print(1+1)"}`` runs MicroPython.
- ``POST /use``: ``{"device": "same70-xplained.LED_GREEN", "op": "toggle"}``.
- ``POST /command``: ``{"board": "same70-xplained", "command": "start", "args": {...}}``
  runs a driver command: ``start`` / ``stop`` a board's data stream.
- ``WS /events``: lifecycle events as JSON, one message each; ``?stream=BOARD`` adds
  that board's stream data (StreamData messages).

SIGTERM (or Ctrl-C) stops it gracefully: open WebSockets are closed (1001), the
runtime's stop hooks run the service's teardown, every device is closed and released,
and the last line printed says what is left (nothing).

The default boards are simulated; ``--qemu`` swaps the simulated micro:bit for the real
firmware in QEMU.  tests/integration/test_service.py runs this file.
"""
# example-test: tests/integration/test_service.py

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import hmac
import ipaddress
import json
import math
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pykka
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from actorhw import DeviceId, DeviceKind
from actorhw.aio import AsyncRuntime, AsyncSubscription
from actorhw.errors import (
    ActorHwError,
    InvalidArgumentError,
    TimedOutError,
    UnsupportedOperationError,
)

TOKEN_ENV = "ACTORHW_SERVICE_TOKEN"
#: The longest ``timeout`` an /exec may ask for, in s.
MAX_EXEC_TIMEOUT = 3600.0
SIMULATED = ["same70-xplained", "microbit"]
WITH_QEMU = ["same70-xplained", "microbit-qemu"]

#: HTTP status of each error code; anything else is 500.
HTTP_STATUS = {
    "invalid_argument": 400,
    "wrong_device_kind": 400,
    "no_such_board": 404,
    "no_such_device": 404,
    "device_or_resource_busy": 409,
    "device_exception": 422,
    "operation_not_supported": 501,
    "device_unavailable": 503,
    "runtime_stopped": 503,
    "timed_out": 504,
}


def say(what: str, **fields: Any) -> None:
    """One line on stdout: ``service: <what> {json}`` (what the tests read)."""
    print(f"service: {what} {json.dumps(fields, sort_keys=True)}", flush=True)


def plain(value: Any) -> Any:
    """Messages and infos as JSON data: ids by key, enums by name, bytes as hex."""
    if isinstance(value, DeviceId):
        return value.key
    if isinstance(value, enum.Enum):
        return value.name
    if attrs.has(type(value)):
        fields = {f.name: plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
        return {"type": type(value).__name__, **fields}
    if isinstance(value, bytes | bytearray):
        return {"hex": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def refusal(status: int, code: str, message: str) -> JSONResponse:
    """An HTTP-level refusal, shaped like an actorhw error."""
    return JSONResponse({"ok": False, "error": {"code": code, "message": message}}, status)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a name) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@attrs.frozen
class Guard:
    """Who may call: the bearer token (None: off) and the Host names and Origins that
    are this service. Checked before any route, for HTTP and WebSocket alike."""

    token: str | None
    hosts: frozenset[str]
    origins: frozenset[str]

    def problem(self, scope: Scope) -> tuple[int, str, str] | None:
        """Why the request is refused (status, code, message), or None."""
        headers = Headers(scope=scope)
        host = _hostname(headers.get("host", ""))
        if host not in self.hosts:
            return 403, "forbidden_host", f"Host {host!r} is not this service"
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return 403, "forbidden_origin", f"Origin {origin!r} may not call this service"
        if self.token is not None:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.token.encode()
            ):
                return 401, "unauthorized", "send 'Authorization: Bearer <token>'"
        if scope["type"] == "http" and scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                return 415, "unsupported_media_type", "a POST body must be application/json"
        return None


def _hostname(host: str) -> str:
    if host.startswith("["):  # [::1]:8000
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class GuardMiddleware:
    """Refuses what ``Guard`` refuses before the app sees it."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.guard.problem(scope) if scope["type"] in ("http", "websocket") else None
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": problem[2]})
        else:
            await refusal(*problem)(scope, receive, send)


def error_response(e: ActorHwError) -> JSONResponse:
    return JSONResponse({"ok": False, "error": e.to_dict()}, HTTP_STATUS.get(e.code, 500))


async def body(request: Request, *required: str) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as e:
        raise InvalidArgumentError(f"the body is not JSON: {e}", argument="body") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError("the body must be a JSON object", argument="body")
    for key in required:
        if not isinstance(data.get(key), str):
            raise InvalidArgumentError(f"{key!r} (a string) is required", argument=key)
    return data


class Service:
    """The app's state: the runtime, the status LED it holds, and the stop signal."""

    def __init__(self, boards: list[str]) -> None:
        self.boards = boards
        self.art: AsyncRuntime | None = None
        self.stopping = asyncio.Event()
        self.status_lease: Any = None

    @property
    def rt(self) -> AsyncRuntime:
        if self.art is None:
            raise InvalidArgumentError("the service is not started", argument="service")
        return self.art

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        started = time.monotonic()
        self.art = await AsyncRuntime.start(boards=self.boards, timeout=30)
        led = await self._first_led()
        if led is not None:
            # The service holds its status LED for its whole life, lit.
            self.status_lease = self.art.lease(led, owner="service")
            await self.status_lease.__aenter__()
            await self.status_lease.use("set", (True,))
        self.art.on_stop(self._teardown)  # runs before any actor stops
        say("ready", boards=self.boards, seconds=round(time.monotonic() - started, 3))
        try:
            yield
        finally:
            await self._stop()

    async def _first_led(self) -> DeviceId | None:
        for info in await self.rt.devices():
            if info.kind is DeviceKind.LED:
                return info.device
        return None

    def _teardown(self) -> None:
        """A stop hook: plain code on a worker thread while every actor still runs."""
        rt = self.rt.runtime
        lease, self.status_lease = self.status_lease, None
        if lease is not None and lease.lease is not None:
            rt.use(lease.lease, "set", (False,), timeout=5)
            rt.release(lease.lease, timeout=5)
            lease.lease = None
        held = [i.device.key for i in rt.devices(timeout=5) if i.owners_count]
        say("teardown", status_led="off and released", still_held=held)

    async def _stop(self) -> None:
        started = time.monotonic()
        self.stopping.set()
        await self.rt.stop()
        # Every actor thread ends with the runtime; wait for them within the 5 s.
        deadline = started + 5.0
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not _ours(thread):
                thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threading.enumerate() if t.is_alive() and not _ours(t)]
        say(
            "stopped",
            released=True,
            actors_alive=len(pykka.ActorRegistry.get_all()),
            threads_alive=alive,
            seconds=round(time.monotonic() - started, 3),
        )

    # --- routes ---------------------------------------------------------------------

    async def health(self, request: Request) -> JSONResponse:
        boards = [
            {
                "board": s.board,
                "state": s.state.name,
                "restarts": s.restarts,
                "quarantined": s.quarantined,
            }
            for s in await self.rt.boards()
        ]
        healthy = self.rt.running and all(b["state"] == "CONNECTED" for b in boards)
        return JSONResponse(
            {"status": "ok" if healthy else "degraded", "boards": boards},
            200 if healthy else 503,
        )

    async def devices(self, request: Request) -> JSONResponse:
        infos = await self.rt.devices(request.query_params.get("board"))
        return JSONResponse([plain(i) for i in infos])

    async def exec(self, request: Request) -> JSONResponse:
        data = await body(request, "board", "code")
        timeout = data.get("timeout", 10.0)
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if not number or not 0 < timeout <= MAX_EXEC_TIMEOUT or not math.isfinite(timeout):
            raise InvalidArgumentError(
                f"'timeout' is a number of seconds in (0, {MAX_EXEC_TIMEOUT:g}], not {timeout!r}",
                argument="timeout",
            )
        board = (await self.rt.ids(data["board"])).__members__.get("BOARD")
        if board is None:
            raise UnsupportedOperationError(
                f"board {data['board']} has no BOARD device, so it does not run code",
                board=data["board"],
            )
        output = await self.rt.exec(board, data["code"], owner="http", timeout=timeout)
        return JSONResponse({"ok": True, "output": output})

    async def use(self, request: Request) -> JSONResponse:
        data = await body(request, "device", "op")
        device = await self.rt.device_id(data["device"])
        args = tuple(data.get("args", ()))
        async with self.rt.lease(device, owner=str(data.get("owner", "http"))) as lease:
            result = await lease.use(data["op"], args)
        return JSONResponse({"ok": True, "result": plain(result)})

    async def command(self, request: Request) -> JSONResponse:
        data = await body(request, "board", "command")
        args = data.get("args", {})
        answer = await self.rt.command(data["board"], data["command"], args, timeout=10)
        status = 200 if answer["status"] == "success" else HTTP_STATUS.get(answer["code"], 500)
        return JSONResponse({"ok": status == 200, **plain(answer)}, status)

    async def events(self, ws: WebSocket) -> None:
        await ws.accept()
        streams = self._stream(ws.query_params.get("stream"))
        async with self.rt.subscribe(maxsize=1024) as sub:
            await ws.send_json({"type": "hello", "boards": self.boards})
            try:
                await self._relay(ws, [sub, *streams])
            finally:
                for s in streams:
                    await s.aclose()

    def _stream(self, board: str | None) -> list[AsyncSubscription]:
        return [] if board is None else [self.rt.stream(board, maxsize=1024)]

    async def _relay(self, ws: WebSocket, subs: list[AsyncSubscription]) -> None:
        """Forward events until the client leaves or the service stops."""
        closed = asyncio.ensure_future(ws.receive())
        stopping = asyncio.ensure_future(self.stopping.wait())
        getters = {asyncio.ensure_future(s.get(timeout=30)): s for s in subs}
        try:
            while True:
                done, _ = await asyncio.wait(
                    {closed, stopping, *getters}, return_when=asyncio.FIRST_COMPLETED
                )
                if stopping in done:
                    await ws.close(1001, "service stopping")
                    return
                if closed in done:
                    return  # the client went away (or sent something: we only talk)
                for getter in done & getters.keys():
                    sub = getters.pop(getter)
                    with contextlib.suppress(TimedOutError):
                        await ws.send_json(plain(getter.result()))
                    getters[asyncio.ensure_future(sub.get(timeout=30))] = sub
        except WebSocketDisconnect:
            return
        finally:
            for task in (closed, stopping, *getters):
                task.cancel()


def _ours(thread: threading.Thread) -> bool:
    """Threads of the event loop itself, which end with it, not with the runtime."""
    return thread.name.startswith("asyncio_") or thread is threading.main_thread()


async def guarded(handler: Any, request: Request) -> JSONResponse:
    try:
        response: JSONResponse = await handler(request)
    except ActorHwError as e:
        return error_response(e)
    return response


def build_app(service: Service, guard: Guard) -> Starlette:
    def route(handler: Any) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            return await guarded(handler, request)

        return endpoint

    return Starlette(
        routes=[
            Route("/health", route(service.health)),
            Route("/devices", route(service.devices)),
            Route("/exec", route(service.exec), methods=["POST"]),
            Route("/use", route(service.use), methods=["POST"]),
            Route("/command", route(service.command), methods=["POST"]),
            WebSocketRoute("/events", service.events),
        ],
        lifespan=service.lifespan,
        middleware=[Middleware(GuardMiddleware, guard=guard)],
    )


class GracefulServer(uvicorn.Server):
    """uvicorn, but SIGTERM/SIGINT first tell the service to stop streaming, and the
    process then exits 0 (uvicorn would re-raise the signal after shutdown)."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.begin_stop, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def begin_stop(self, sig: signal.Signals) -> None:
        if self.should_exit:
            self.force_exit = True  # a second signal: stop waiting for connections
            return
        say("stopping", signal=sig.name)
        self.service.stopping.set()
        self.should_exit = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--qemu", action="store_true", help="use the micro:bit in QEMU")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--token", help=f"the bearer token (default: ${TOKEN_ENV}, or a new one)")
    parser.add_argument(
        "--no-auth", action="store_true", help="no token (only on a loopback --host)"
    )
    parser.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="another Host name this service answers to (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.no_auth and not is_loopback(args.host):
        parser.error(f"--no-auth is only allowed on a loopback --host, not {args.host}")
    token = None if args.no_auth else (args.token or os.environ.get(TOKEN_ENV))
    token = None if args.no_auth else (token or secrets.token_urlsafe(24))

    service = Service(WITH_QEMU if args.qemu else SIMULATED)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)  # connections wait in the backlog until the boards are up
    host, port = sock.getsockname()[:2]
    names = {host, *args.allow_host}
    if is_loopback(host):
        names |= {"localhost", "127.0.0.1", "[::1]"}
    origins = {f"http://{name}:{port}" for name in names}
    guard = Guard(token=token, hosts=frozenset(names), origins=frozenset(origins))
    say("listening", url=f"http://{host}:{port}", token=token)
    config = uvicorn.Config(
        build_app(service, guard),
        log_level=args.log_level,
        timeout_graceful_shutdown=3,
        ws="websockets-sansio",
    )
    server = GracefulServer(config, service)
    asyncio.run(server.serve(sockets=[sock]))
    return 0 if service.art is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
