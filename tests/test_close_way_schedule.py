"""November closed by the monthly schedule's tick on 2026-12-01 06:00 UTC (tests/three_ways.py): it requests
October's restatement and November, and the warehouse ends as `billops close` leaves it."""

import pytest

from tests.three_ways import closed_by

COMPARED = ("restatements", "invoices", "lines", "work_items")


@pytest.fixture(scope="module")
def schedule(closed_golden, tmp_path_factory) -> dict:
    return closed_by("schedule", closed_golden, tmp_path_factory)


def test_the_schedule_requests_october_s_restatement_then_november(schedule):
    assert schedule["requests"] == [["2026-10-01", "schedule"], ["2026-11-01", "schedule"]]
    assert schedule["runs"] == [["2026-10-01", "SUCCESS"], ["2026-11-01", "SUCCESS"]]


def test_the_schedule_leaves_what_the_command_leaves(schedule, closed_golden, tmp_path_factory):
    command = closed_by("command", closed_golden, tmp_path_factory)
    assert {name: schedule[name] for name in COMPARED} == {name: command[name] for name in COMPARED}
    assert schedule["restatements"]
