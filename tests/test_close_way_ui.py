"""November submitted as the UI's "Materialize" submits it (tests/three_ways.py): the daemon's restatement
sensor requests October's restatement by itself, and the warehouse ends as `billops close` leaves it."""

import pytest

from tests.three_ways import closed_by

COMPARED = ("restatements", "invoices", "lines", "work_items")


@pytest.fixture(scope="module")
def ui(closed_golden, tmp_path_factory) -> dict:
    return closed_by("ui", closed_golden, tmp_path_factory)


def test_the_ui_run_is_followed_by_october_s_restatement_and_nothing_else(ui):
    assert ui["runs"] == [[True, "2026-11-01", None, "SUCCESS"],
                          [False, "2026-10-01", "restatement_sensor", "SUCCESS"]]


def test_the_ui_leaves_what_the_command_leaves(ui, closed_golden, tmp_path_factory):
    command = closed_by("command", closed_golden, tmp_path_factory)  # built by another worker, or here
    assert {name: ui[name] for name in COMPARED} == {name: command[name] for name in COMPARED}
    assert ui["restatements"]  # October was restated: the comparison is not of two empty warehouses
