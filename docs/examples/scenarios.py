"""Run a scenario file from Python, as ``actorhw run`` does, and write a JUnit report.

Run it with ``python docs/examples/scenarios.py``; the test suite runs it too.
"""

import tempfile
from pathlib import Path

from actorhw.scenario import junit_xml, load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]

scenario = load_scenario(ROOT / "scenarios" / "quickstart.toml")  # checked before it runs
report = run_scenario(scenario, on_event=lambda e: None)  # a fresh Runtime, torn down after

print(f"{report.name}: {'PASS' if report.passed else 'FAIL'} {report.counts()}")
for step in report.steps:
    print(f"  line {step.line:>3}  {step.status:<7} {step.name}  {step.value}")

with tempfile.TemporaryDirectory() as folder:
    out = Path(folder) / "report.xml"
    out.write_text(junit_xml([report]), encoding="utf-8")
    print("JUnit:", out.read_text(encoding="utf-8").splitlines()[2].strip()[:60], "...")
