"""A person reading the console while a close runs neither fails nor holds the close up.

The session's `closed_november` (tests/golden_november.py) closes November through the installed
`billops close` while a thread reads the console's pages (the real application, logged in as a
finance account) until the close has ended. No close is run here: the shared one is read.
"""

from __future__ import annotations

from tests.golden_november import CONSOLE_PAGES


def test_the_console_is_read_throughout_a_close_and_the_close_succeeds(closed_november):
    console = closed_november.console
    assert closed_november.result.returncode == 0, closed_november.result.stderr[-3000:]  # not held up
    assert console["login"] == 303
    reads = console["reads"]
    assert len(reads) >= 2 * len(CONSOLE_PAGES), f"only {len(reads)} pages read during the close"
    assert {path for path, _ in reads} == set(CONSOLE_PAGES)
    failed = [(path, status) for path, status in reads if status != 200]
    assert failed == []
