"""Scenarios: data files (TOML) that bring boards up and run checked steps on them.

    scenario = load_scenario("scenarios/quickstart.toml")   # errors name file:line:key
    report = run_scenario(scenario)
    assert report.passed

See docs/scenarios.md for the file format; `actorhw.scenario.junit` writes JUnit
XML for CI systems. No host code is ever evaluated from a scenario file.
"""

from actorhw.scenario.junit import junit_xml
from actorhw.scenario.loader import load_scenario
from actorhw.scenario.model import BoardUp, Expect, Scenario, Step
from actorhw.scenario.report import ScenarioReport, StepEvent, StepResult
from actorhw.scenario.runner import run_scenario

__all__ = [
    "BoardUp",
    "Expect",
    "Scenario",
    "ScenarioReport",
    "Step",
    "StepEvent",
    "StepResult",
    "junit_xml",
    "load_scenario",
    "run_scenario",
]
