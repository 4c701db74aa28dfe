"""What a client shows of the cluster: boards with their host and liveness, devices."""

from __future__ import annotations

import attrs

from actorhw.core.errors import InvalidArgumentError
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import DeviceInfo
from actorhw.core.messages.cluster import HostDevice


@attrs.frozen(kw_only=True)
class ClusterBoard:
    """A board of the cluster, as its host's last heartbeat showed it."""

    name: str
    """``host/board``."""
    host: str
    board: str
    definition: str
    driver: str
    state: DeviceState
    reason: str
    online: bool
    """Whether its host heartbeats."""
    devices: int
    restarts: int = 0


def split_board(name: str) -> tuple[str, str]:
    """``host/board`` -> (host, board); InvalidArgumentError otherwise."""
    host, sep, board = name.partition("/")
    if not sep or not host or not board or "/" in board:
        raise InvalidArgumentError(
            f"a cluster board is named host/board, not {name!r}", argument="board"
        )
    return host, board


def device_info(device: DeviceId, d: HostDevice, owners: tuple[str, ...]) -> DeviceInfo:
    """A cluster device's DeviceInfo: state from its host's heartbeat, owners from the
    leases bucket."""
    return DeviceInfo(
        device=device, kind=d.kind, state=d.state, policy=d.policy, owners=owners,
        owners_count=len(owners), open_count=len(d.owners), generation=d.generation,
        last_error=d.last_error,
    )  # fmt: skip


def host_device(info: DeviceInfo) -> HostDevice:
    """A device's info as the wire carries it (a host's heartbeat and replies)."""
    return HostDevice(
        name=info.device.name,
        kind=info.kind,
        state=info.state,
        policy=info.policy,
        owners=info.owners,
        generation=info.generation,
        last_error=info.last_error,
    )
