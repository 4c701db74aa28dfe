"""Where a cluster lives and how to reach it: servers, credentials, TLS, the prefix of
its subjects and buckets, and its timing (lease TTL, heartbeat).

Every name a cluster uses starts with its ``prefix`` so two labs can share a server:

    subjects  <prefix>.call.<host>          requests to a host (request/reply)
              <prefix>.beat.<host>          its heartbeat, plain NATS (liveness even
                                            while JetStream elects a leader)
    buckets   <prefix>_hosts                each host's heartbeat (HostAnnounce)
              <prefix>_leases               <host>.<board>.<DEVICE> -> LeaseRecord, TTL
              <prefix>_queue                reservation waiters, TTL
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from typing import TYPE_CHECKING, Any

import attrs

from actorhw.core.errors import HostUnreachableError, InvalidArgumentError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

#: Names a host, board or prefix may have (they become subject tokens and keys).
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_CLOSE_TIMEOUT = 1.0
"""How long closing a connection that never logged in may take."""


def check_name(value: str, what: str) -> str:
    """``value`` if it can be a subject token and key part; else InvalidArgumentError."""
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidArgumentError(
            f"{what} {value!r} may hold only letters, digits, '-' and '_'", argument=what
        )
    return value


@attrs.frozen(kw_only=True)
class ClusterConfig:
    """How to reach a cluster, and its timing.

    ``lease_ttl`` and ``replicas`` take effect when the buckets are first created; after
    that the buckets' own settings hold (a client reads the TTL back from the bucket).
    """

    servers: tuple[str, ...]
    """Server URLs (``nats://host:4222``; several for a NATS cluster)."""
    prefix: str = "actorhw"
    """Start of every subject and bucket name."""
    lease_ttl: float = 10.0
    """Seconds a lease lives without renewal (holders renew every third of it)."""
    heartbeat: float = 0.5
    """Seconds between a host's heartbeats."""
    offline_after: float = 2.5
    """Seconds without a heartbeat after which a host's boards are offline."""
    replicas: int = 1
    """Copies of each bucket in a NATS cluster (3 survives one server's loss)."""
    memory: bool = False
    """Keep buckets in memory rather than on disk (lost on a server restart)."""
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    """A NATS credentials file (JWT and nkey seed)."""
    nkey_seed: str | None = None
    """A file holding an nkey seed."""
    tls_ca: str | None = None
    """A CA file to verify the servers' certificates; turns TLS on."""
    tls_cert: str | None = None
    """A client certificate (with ``tls_key``) for servers that verify clients."""
    tls_key: str | None = None
    tls_hostname: str | None = None
    connect_timeout: float = 5.0

    def __attrs_post_init__(self) -> None:
        if not self.servers or not all(isinstance(s, str) and s for s in self.servers):
            raise InvalidArgumentError("a cluster needs at least one server URL", argument="url")
        check_name(self.prefix, "prefix")
        for name in ("lease_ttl", "heartbeat", "offline_after", "connect_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise InvalidArgumentError(f"{name} must be > 0, not {value!r}", argument=name)
        if self.lease_ttl < 1:
            raise InvalidArgumentError("lease_ttl must be >= 1 s", argument="lease_ttl")

    @classmethod
    def of(cls, url: str | list[str] | tuple[str, ...], **options: Any) -> ClusterConfig:
        """A config from one URL, a comma-separated list, or a sequence of URLs."""
        urls = url.split(",") if isinstance(url, str) else list(url)
        return cls(servers=tuple(u.strip() for u in urls if u.strip()), **options)

    # --- names ------------------------------------------------------------------------

    def call_subject(self, host: str) -> str:
        """The subject a host answers requests on."""
        return f"{self.prefix}.call.{host}"

    def fast_subject(self, host: str) -> str:
        """The subject of a host's fast lane for device operations (host_fast.py)."""
        return f"{self.prefix}.fast.{host}"

    def beat_subject(self, host: str) -> str:
        """The subject a host's plain heartbeats go to (``*`` for every host)."""
        return f"{self.prefix}.beat.{host}"

    @property
    def hosts_bucket(self) -> str:
        return f"{self.prefix}_hosts"

    @property
    def leases_bucket(self) -> str:
        return f"{self.prefix}_leases"

    @property
    def queue_bucket(self) -> str:
        return f"{self.prefix}_queue"

    # --- connecting -------------------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for the servers, or None for plain TCP."""
        if not (self.tls_ca or self.tls_cert or any(s.startswith("tls://") for s in self.servers)):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    async def connect(self, name: str) -> Client:
        """A connection to the cluster's servers (it reconnects on its own).

        Raises:
            HostUnreachableError: no server answered within ``connect_timeout``.
        """
        from actorhw.cluster.nats_client import Client

        options: dict[str, Any] = {
            "servers": list(self.servers),
            "name": name,
            "connect_timeout": max(1, round(self.connect_timeout)),
            "reconnect_time_wait": 0.2,
            "max_reconnect_attempts": -1,
            "allow_reconnect": True,
        }
        for key in ("user", "password", "token", "tls_hostname"):
            if getattr(self, key):
                options[key] = getattr(self, key)
        if self.creds:
            options["user_credentials"] = self.creds
        if self.nkey_seed:
            options["nkeys_seed"] = self.nkey_seed
        tls = self.tls_context()
        if tls is not None:
            options["tls"] = tls

        # nats-py retries a refused login for ever; every server refusing ours is an
        # answer: the credentials are wrong, and the caller hears it at once.
        refusals: set[str] = set()
        refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def on_error(error: Exception) -> None:
            """Other connection errors are reported by the calls that meet them."""
            if "authorization violation" in str(error).lower() and not refused.done():
                refusals.add(str(getattr(nc, "connected_url", None) or len(refusals)))
                if len(refusals) >= len(self.servers):
                    refused.set_result(str(error))

        nc = Client()
        connecting = asyncio.ensure_future(nc.connect(error_cb=on_error, **options))
        either: set[asyncio.Future[Any]] = {connecting, refused}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            connecting.cancel()
            raise
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(nc.close(), _CLOSE_TIMEOUT)
            raise HostUnreachableError(
                f"the cluster at {', '.join(self.servers)} refused these credentials: "
                f"{refused.result()}",
                host=",".join(self.servers),
            )
        try:
            connecting.result()
        except Exception as e:
            raise HostUnreachableError(
                f"cannot reach the cluster at {', '.join(self.servers)}: {e or type(e).__name__}",
                host=",".join(self.servers),
            ) from e
        return nc

    async def buckets(self, js: JetStreamContext) -> Buckets:
        """Bind the cluster's buckets, creating any that does not exist yet."""
        return Buckets(
            hosts=await self._bucket(js, self.hosts_bucket, ttl=None),
            leases=await self._bucket(js, self.leases_bucket, ttl=self.lease_ttl),
            queue=await self._bucket(js, self.queue_bucket, ttl=self.lease_ttl),
        )

    async def _bucket(self, js: JetStreamContext, name: str, *, ttl: float | None) -> KeyValue:
        from nats.js.api import KeyValueConfig, StorageType
        from nats.js.errors import BucketNotFoundError

        from actorhw.cluster.wire import patiently

        try:  # retried while a JetStream leader is being elected
            return await patiently(lambda: js.key_value(name), f"bucket {name}")
        except BucketNotFoundError:
            pass
        config = KeyValueConfig(
            bucket=name,
            history=1,
            ttl=ttl,
            # Expiry puts a marker that watchers see: hosts drop an expired lease at once.
            limit_marker_ttl=max(1.0, ttl) if ttl else None,
            replicas=self.replicas,
            storage=StorageType.MEMORY if self.memory else StorageType.FILE,
        )
        return await js.create_key_value(config)


@attrs.frozen
class Buckets:
    """The cluster's key-value buckets, bound."""

    hosts: KeyValue
    leases: KeyValue
    queue: KeyValue
