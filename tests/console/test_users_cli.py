"""`billops users add|passwd|disable|enable|list`: accounts on a real SQLite store, the password from stdin.

Through the same Typer app in process (tests/conftest.py Workspace.billops), with stdin not a
terminal, as a script or `make demo` feeds it. The password never shows in what the command
prints; names are one person under `person_key`, so `Alice`, `ali\\u200bce` and fullwidth
`ａｌｉｃｅ` are refused once `alice` exists; changes are recorded with the OS user.
"""

from __future__ import annotations

import os
import pwd

import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from console import accounts

ME = pwd.getpwuid(os.geteuid()).pw_name
SECRET = "very secret password 1"


def run(tmp_path, *args: str, stdin: str | None = None):
    env = {"BILLOPS_QUEUE_URL": f"sqlite:///{tmp_path / 'ops.sqlite'}"}
    return CliRunner().invoke(app, ["users", *args], input=stdin, env=env)


def test_accounts_are_added_changed_and_listed_without_showing_the_password(tmp_path):
    added = run(tmp_path, "add", "alice", "--role", "approver", stdin=SECRET + "\n")
    assert added.exit_code == 0 and "added alice (approver)" in added.output and SECRET not in added.output
    for twin in ("Alice", "ali\u200bce", "ａｌｉｃｅ"):
        refused = run(tmp_path, "add", twin, "--role", "lead", stdin=SECRET + "\n")
        # a hidden character is refused as a name at all; the others are alice again
        assert refused.exit_code == 1 and ("exists already" in refused.output or "not a usable" in refused.output), twin
    assert run(tmp_path, "add", "bob", "--role", "boss", stdin=SECRET + "\n").exit_code == 1
    short = run(tmp_path, "add", "bob", "--role", "finance", stdin="short\n")
    assert short.exit_code == 1 and "at least 10" in short.output and "short" not in short.output.replace("at least", "")
    assert run(tmp_path, "add", "sso-user", "--role", "finance", "--sso-only").exit_code == 0
    assert run(tmp_path, "passwd", "ALICE", stdin="another long password\n").exit_code == 0
    assert run(tmp_path, "disable", "alice").exit_code == 0
    listed = run(tmp_path, "list").output
    assert "alice" in listed and "disabled" in listed and "sso-only" in listed
    engine = accounts.accounts_engine(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    assert accounts.log_in(engine, "alice", "another long password", "test") is None  # disabled
    assert run(tmp_path, "enable", "alice").exit_code == 0
    assert accounts.log_in(engine, "alice", "another long password", "test") is not None
    assert accounts.log_in(engine, "alice", SECRET, "test") is None  # the old password is gone
    with engine.connect() as conn:
        trail = conn.execute(sa.select(accounts.events.c.by, accounts.events.c.channel, accounts.events.c.action)
                             .where(accounts.events.c.channel == "command")).all()
        dump = " ".join(map(str, conn.execute(sa.select(accounts.users)).all()))
    assert {(ME, "command", "user_added"), (ME, "command", "password_set"), (ME, "command", "user_disabled")} <= set(trail)
    assert SECRET not in dump and "another long password" not in dump
