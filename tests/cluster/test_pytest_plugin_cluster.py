"""The pytest plugin's ``--actorhw-cluster URL``: a test session joins a real cluster
(nats-server, a host process serving a simulated board) through ``actorhw_cluster``."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorhw.cluster import NatsServer
from tests.cluster.conftest import Hosts
from tests.plugin_runs import run_pytest, write_project

pytestmark = pytest.mark.timeout(180)


def test_a_session_joins_the_cluster_of_its_option(
    tmp_path: Path, nats_server: NatsServer, hosts: Hosts
) -> None:
    hosts.start(nats_server.url, "bench-a", ["same70-xplained"])
    write_project(tmp_path / "project", {"test_c.py": """
        from actorhw import Led

        def test_leases_a_board_of_another_host(actorhw_cluster):
            actorhw_cluster.wait_for(lambda c: bool(c.boards()), timeout=30)
            (board,) = actorhw_cluster.boards()
            assert (board.host, board.definition) == ("bench-a", "same70-xplained")
            ids = actorhw_cluster.ids(board.name)
            with actorhw_cluster.lease(Led, ids.LED_GREEN, owner="pytest") as led:
                led.on()
                assert led.is_on()
    """})  # fmt: skip
    run = run_pytest(tmp_path / "project", f"--actorhw-cluster={nats_server.url}")
    assert run.outcomes == {"test_leases_a_board_of_another_host": "passed"}, run

    # Without a URL the fixture says how to give one.
    run = run_pytest(tmp_path / "project")
    assert run.outcomes == {"test_leases_a_board_of_another_host": "error"}, run
    assert (
        "no cluster: pass --actorhw-cluster URL"
        in run.messages["test_leases_a_board_of_another_host"]
    )
