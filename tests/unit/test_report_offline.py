"""The monthly report links nowhere (issue 17 item 6): an alert's Dagster UI link becomes its run id.

Found on a fresh clone: the generated chain's October fails two WARN payment checks (P1, P4) by
design, and when the alert sensor of the close's daemon ticked before the daemon stopped, the
report printed `Run: http://localhost:3000/runs/<id>` from the alert's text.
"""

from console.report import offline_text

RUN = "e96b93a6-0deb-47b4-aae8-9c95886d1910"


def test_the_run_link_becomes_the_run_id_and_other_addresses_are_dropped():
    text = f"P1_no_duplicate_charge failed (2 of 150)\nRun: http://localhost:3000/runs/{RUN}"
    assert offline_text(text) == f"P1_no_duplicate_charge failed (2 of 150)\nRun: {RUN}"
    assert offline_text(f"see https://dagster.example.com:8443/runs/{RUN}?x=1 and https://example.com/a") == \
        f"see {RUN}?x=1 and (link removed)"
    assert offline_text("no link at all") == "no link at all"
    assert offline_text(None) == ""
