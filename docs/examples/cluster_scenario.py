"""A scenario whose boards live on two hosts, then a job over devices of both hosts.

Needs a cluster with hosts lab-1 (same70-xplained) and lab-2 (microbit) serving, at
$ACTORHW_CLUSTER (default nats://127.0.0.1:4222); see docs/cluster.md.
"""
# example-test: tests/cluster/test_cluster_scenarios.py

import os
from pathlib import Path

from actorhw import Gpio, Handle, Led
from actorhw.cluster import Cluster
from actorhw.scenario import load_scenario, run_scenario

URL = os.environ.get("ACTORHW_CLUSTER", "nats://127.0.0.1:4222")
FILE = Path(__file__).with_name("cluster_lab.toml")

with Cluster.connect(URL, owner="ci-job-17") as cl:
    # Checked against the cluster: hosts, boards and devices named host/board.
    scenario = load_scenario(FILE, cluster=cl)
    report = run_scenario(scenario, runtime=cl)
    print(f"{report.name}: {'PASS' if report.passed else 'FAIL'}, {len(report.steps)} steps")
    for step in report.steps:
        print(f"  {step.status:7} {step.name}")

    # A job over devices of both hosts: each leased, opened, used and released.
    targets = [
        cl.device("lab-1/same70-xplained", "LED_GREEN"),
        cl.device("lab-1/same70-xplained", "LED_RED"),
        cl.device("lab-2/microbit", "PIN0"),
    ]

    def level(device: Handle) -> bool:
        if isinstance(device, Led):
            device.on()
            return device.is_on()
        assert isinstance(device, Gpio)
        return device.read()

    result = cl.run_job(targets, level, limit=3)
    for target in result.results:
        print(f"  job {target.target.key}: {target.value if target.ok else target.error}")
