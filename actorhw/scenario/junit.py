"""JUnit XML reports of scenario runs, for CI systems.

One ``<testsuite>`` per scenario file, one ``<testcase>`` per step (the steps of a
parallel group each get theirs, named ``[target] step``); a failed step has a
``<failure>`` with what was expected and what came, a skipped one ``<skipped/>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from actorhw.scenario.report import FAILED, SKIPPED, ScenarioReport, leaves


def junit_xml(reports: Sequence[ScenarioReport]) -> str:
    """The reports as a JUnit XML document (``<testsuites>``)."""
    suites = ET.Element("testsuites", name="actorhw scenarios")
    for report in reports:
        cases = leaves(report.steps)
        failures = sum(1 for c in cases if c.status == FAILED)
        errors = 1 if report.error or report.interrupted else 0
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=report.name,
            file=report.file,
            tests=str(len(cases) + errors),
            failures=str(failures),
            errors=str(errors),
            skipped=str(sum(1 for c in cases if c.status == SKIPPED)),
            time=f"{report.elapsed:.3f}",
        )
        for case in cases:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=report.name,
                name=case.name,
                file=report.file,
                line=str(case.line),
                time=f"{case.elapsed:.3f}",
            )
            if case.status == FAILED:
                failure = ET.SubElement(
                    element, "failure", message=case.message, type=case.code or "failed"
                )
                failure.text = case.message
            elif case.status == SKIPPED:
                why = (
                    "interrupted before it ran" if report.interrupted else "an earlier step failed"
                )
                ET.SubElement(element, "skipped", message=why)
        if errors:
            element = ET.SubElement(suite, "testcase", classname=report.name, name="scenario")
            what = report.error or "interrupted"
            ET.SubElement(element, "error", message=what, type="scenario").text = what
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
