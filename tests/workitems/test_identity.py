"""Four eyes on a real identity (issue 14 item 1): the identity of `billops workitems approve|decline` is
the OS user running it, never a name typed in `--by` or an environment variable.

The command runs for real (the installed `billops`, a real SQLite queue): as this test's OS user with every
trick, the second approval is always refused; as two real OS users (root and a system user), the item is
approved.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import BILLOPS
from workitems.identity import person_key
from workitems.store import get_item, queue_engine, raise_item

REPO = Path(__file__).resolve().parents[2]
ME = pwd.getpwuid(os.geteuid()).pw_name  # read here independently of workitems/identity.py

OVER_100 = {"kind": "refund", "rule": "R2", "customer_id": "CUST-0001", "invoice_number": "BO-202610-000003",
            "charge_id": "ch_dup", "amount": Decimal("301.55"), "reason": "second succeeded charge"}


def _fullwidth(name: str) -> str:
    """`root` as `ｒｏｏｔ`: the fullwidth forms NFKC folds back to ASCII."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in name)


def _zero_width(name: str) -> str:
    return name[:1] + "\u200b" + name[1:]


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("BILLOPS_ACTOR", "BILLOPS_WORKITEM_WEBHOOK_URL", "USER", "LOGNAME")}
    return {**env, **extra}


def _billops(queue_url: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BILLOPS), "workitems", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=_clean_env(BILLOPS_QUEUE_URL=queue_url, BILLOPS_WAREHOUSE=str(cwd / "absent.duckdb"),
                                         **env))


def _trail(engine, work_item_id: str) -> list[tuple]:
    return [(e["action"], e["by"], e["os_user"], e["channel"]) for e in get_item(engine, work_item_id)["events"]]


@pytest.fixture
def queue(tmp_path, monkeypatch):
    monkeypatch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    engine = queue_engine(url)
    assert raise_item(engine, OVER_100) == ("WI-000001", True)
    return url, engine, tmp_path


def test_one_os_user_never_supplies_both_approvals_whatever_it_types(queue):
    url, engine, root = queue
    not_me = f"refused: --by {{}} is not you: this command runs as the OS user {ME}; billops records the OS user, " \
             f"so --by may only name {ME} (or be left out)"
    # the first step: a name that is not the OS user is refused, and nothing is recorded
    ana = _billops(url, root, "approve", "WI-000001", "--by", "ana")
    assert (ana.returncode, ana.stderr.strip(), ana.stdout) == (1, not_me.format("ana"), "")
    assert get_item(engine, "WI-000001")["approvals"] == ()

    first = _billops(url, root, "approve", "WI-000001", "--by", ME, "--reason", "two captures in the charge log")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"WI-000001: approval 1 of 2 recorded by {ME}; a second person must approve")

    same_person = f"refused: WI-000001 needs two different people (four eyes): {ME} already approved it"
    tricks = [  # (--by or None, extra environment, the refusal)
        ("anna", {}, not_me.format("anna")),
        ("ali\u200bce", {}, not_me.format("ali\\u200bce")),
        ("bob", {"BILLOPS_ACTOR": "bob"}, not_me.format("bob")),
        (None, {"BILLOPS_ACTOR": "bob"}, same_person + "; a second person must approve"),
        ("bob", {"USER": "bob", "LOGNAME": "bob"}, not_me.format("bob")),
        (None, {"USER": "bob", "LOGNAME": "bob", "BILLOPS_ACTOR": "bob"}, same_person + "; a second person must approve"),
        (ME, {}, same_person + "; a second person must approve"),
        (ME.upper(), {}, same_person + "; a second person must approve"),
        (_zero_width(ME), {}, same_person + "; a second person must approve"),
        (_fullwidth(ME), {}, same_person + "; a second person must approve"),
        (f"  {ME.title()} ", {"USER": "bob"}, same_person + "; a second person must approve"),
    ]
    for by, env, refusal in tricks:
        args = ("approve", "WI-000001") + (("--by", by) if by is not None else ())
        result = _billops(url, root, *args, **env)
        assert (result.returncode, result.stderr.strip(), result.stdout) == (1, refusal, ""), (by, env)

    item = get_item(engine, "WI-000001")
    assert (item["status"], item["approvals"], item["decided_by"]) == ("open", (ME,), None)
    assert _trail(engine, "WI-000001") == [("created", "sensor", ME, "sensor"),
                                           ("approval_recorded", ME, ME, "command")]
    shown = _billops(url, root, "list")
    assert shown.stdout.splitlines()[1].split()[5:8] == ["301.55", "open", "1/2"]


# Runs `billops workitems ...` (cli.main's app, as the installed script does) as a real OS user. The
# interpreter may live where only root can read it (pyenv under /root), so `subprocess.run(user=...)` could
# not even start Python. Instead, run as root once (`record`), the command notes every module it loaded;
# run as another user, the launcher loads those modules, then gives up root for good (supplementary groups,
# gid, then real, effective and saved uid) before the command runs, so everything the command does and
# checks sees only the other user.
AS_USER = """
import importlib, os, sys
modules, uid, gid, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
if uid != "record":
    for name in open(modules).read().split():
        try:
            importlib.import_module(name)
        except Exception:
            pass
    os.setgroups([])
    os.setgid(int(gid))
    os.setuid(int(uid))
    assert os.getresuid() == (int(uid),) * 3 and os.getresgid() == (int(gid),) * 3
from cli.main import app
sys.argv = ["billops", *args]
try:
    app()
finally:
    if uid == "record":
        open(modules, "w").write("\\n".join(sorted(m for m in sys.modules if m != "__main__")))
"""


def _other_user() -> pwd.struct_passwd | None:
    for name in ("nobody", "daemon"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return entry
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="a second real OS user needs root to switch to it; "
                                              "these tests are not running as root")
def test_two_real_os_users_approve_an_item_that_needs_four_eyes(monkeypatch):
    monkeypatch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
    other = _other_user()
    assert other is not None, "no unprivileged system user (nobody, daemon) on this machine"
    # a folder both users can reach: pytest's own tmp_path is private to root
    shared = Path(tempfile.mkdtemp(prefix="billops-four-eyes-", dir="/tmp"))
    modules = shared.with_suffix(".modules")
    try:
        url = f"sqlite:///{shared / 'ops.sqlite'}"
        engine = queue_engine(url)
        assert raise_item(engine, OVER_100) == ("WI-000001", True)
        engine.dispose()
        def run_as(uid: str, gid: str, *args: str, **env: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-c", AS_USER, str(modules), uid, gid, "workitems", *args],
                                  cwd=shared, capture_output=True, text=True, timeout=120,
                                  env=_clean_env(BILLOPS_QUEUE_URL=url, BILLOPS_WAREHOUSE=str(shared / "absent.duckdb"),
                                                 **env))

        first = run_as("record", "", "approve", "WI-000001", "--reason", "two captures in the charge log")
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"WI-000001: approval 1 of 2 recorded by {ME}")
        for path in (shared, *shared.iterdir()):  # the queue file and its folder become writable for the other user
            os.chown(path, other.pw_uid, other.pw_gid)

        def as_other(*args: str) -> subprocess.CompletedProcess:  # with every variable naming the first user
            return run_as(str(other.pw_uid), str(other.pw_gid), *args, HOME=str(shared), USER=ME, LOGNAME=ME,
                          BILLOPS_ACTOR=ME)

        posing = as_other("approve", "WI-000001", "--by", ME)  # the other user cannot borrow the first one's name
        assert (posing.returncode, posing.stderr.strip()) == (
            1, f"refused: --by {ME} is not you: this command runs as the OS user {other.pw_name}; billops records "
               f"the OS user, so --by may only name {other.pw_name} (or be left out)")

        second = as_other("approve", "WI-000001", "--by", other.pw_name.upper(), "--reason", "checked the refund")
        assert second.returncode == 0, second.stderr
        assert second.stdout.startswith(f"WI-000001 approved by {ME} and {other.pw_name}")

        engine = queue_engine(url)
        item = get_item(engine, "WI-000001")
        assert (item["status"], item["decided_by"], item["approvals"]) == ("approved", other.pw_name, (ME, other.pw_name))
        assert _trail(engine, "WI-000001") == [
            ("created", "sensor", ME, "sensor"),
            ("approval_recorded", ME, ME, "command"),
            ("approved", other.pw_name, other.pw_name, "command"),
        ]
        engine.dispose()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        modules.unlink(missing_ok=True)


def test_a_store_from_before_channels_opens_and_its_approvals_still_count(queue):
    """An ops.sqlite written by an older billops: no `channel` column, and an approval whose `--by` was free
    text (`ana`) typed by this OS user. It opens (the column is added, once), and that OS user cannot now
    approve again under its real name."""
    url, engine, root = queue
    engine.dispose()
    path = root / "ops.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("ALTER TABLE work_item_events DROP COLUMN channel")
        con.execute("INSERT INTO work_item_events (work_item_id, at, action, by, os_user, from_status, to_status) "
                    "VALUES ('WI-000001', '2026-12-01 09:00:00', 'approval_recorded', 'ana', ?, 'open', 'open')", [ME])

    again = _billops(url, root, "approve", "WI-000001")
    assert (again.returncode, again.stderr.strip()) == (
        1, f"refused: WI-000001 needs two different people (four eyes): ana already approved it as the OS user "
           f"{ME}; a second person must approve")
    with sqlite3.connect(path) as con:
        columns = [row[1] for row in con.execute("PRAGMA table_info(work_item_events)")]
    assert columns.count("channel") == 1
    shown = _billops(url, root, "show", "WI-000001")
    assert shown.returncode == 0, shown.stderr
    assert f"approval_recorded by ana (os user {ME})  open -> open" in shown.stdout
    assert queue_engine(url) is not None  # opening again adds nothing twice
    with sqlite3.connect(path) as con:
        assert [row[1] for row in con.execute("PRAGMA table_info(work_item_events)")].count("channel") == 1


@pytest.mark.parametrize("a, b", [
    ("ana", "ANA"), ("alice", "ali\u200bce"), ("alice", "\uff41\uff4c\uff49\uff43\uff45"), ("Straße", "STRASSE"),
    ("bob", " bob\u2060 "), ("José", "JOSE\u0301"), ("ﬁona", "FIONA"), ("Ana", "ana"),  # console account vs OS user
])
def test_person_key_makes_one_person_of_every_spelling(a, b):
    assert person_key(a) == person_key(b)


@pytest.mark.parametrize("a, b", [("ana", "anna"), ("alice", "alicia"), ("bob", "b ob"), ("ana", "аna")])
def test_person_key_keeps_different_names_apart(a, b):
    assert person_key(a) != person_key(b)  # the last pair: a Cyrillic а is another letter, not a spelling
