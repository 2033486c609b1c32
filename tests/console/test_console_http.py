"""The console over HTTP (issue 17): the real application on a real published copy and a real SQLite queue.

Starlette's TestClient drives the application in process (no socket): each role's permissions,
pages refused without a session, forms refused without their CSRF token, four eyes on the
console identity (one account twice; a console account and the OS user of the same name through
the real `billops workitems approve`), slowed logins, expiring sessions, the trusted proxy, the
KPI page and the report equal to the marts, an invoice's lines traced to their landed files,
and readers that keep reading while the published copy is swapped under them.
"""

from __future__ import annotations

import os
import pwd
import re
import threading
from datetime import timedelta
from decimal import Decimal

import duckdb
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from console import accounts
from console.app import create_app
from tests.conftest import Workspace
from tests.console_workspace import PASSWORD, build
from workitems.store import get_item, list_items, queue_engine

ME = pwd.getpwuid(os.geteuid()).pw_name
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def cws(generated_chain, tmp_path_factory):
    assert all(r.returncode == 0 for r in generated_chain.results.values()), "the generated chain failed"
    return build(generated_chain, tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def app(cws):
    return create_app(cws.published, cws.queue_url, settings=cws.settings())


def client(app, name: str | None = None) -> TestClient:
    c = TestClient(app)
    if name:
        r = c.post("/login", data={"name": name, "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303, r.text[:500]
    return c


def csrf_of(c: TestClient, path: str = "/queue") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def published(cws, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(cws.published / "billops.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def an_open_item(cws, requires_approval: bool | None = None, exclude: tuple = ()) -> str:
    engine = queue_engine(cws.queue_url)
    items = [i["work_item_id"] for i in list_items(engine, status="open") if i["work_item_id"] not in exclude
             and (requires_approval is None or i["requires_approval"] == requires_approval)]
    engine.dispose()
    assert items, "no open item left in the chain's queue"
    return items[-1]


def item(cws, work_item_id: str) -> dict:
    engine = queue_engine(cws.queue_url)
    try:
        return get_item(engine, work_item_id)
    finally:
        engine.dispose()


PAGES = ["/queue", "/kpis", "/team", "/breaches", "/reports", "/search?q=x", "/users"]


@pytest.mark.parametrize("path", PAGES + ["/items/WI-000001", "/reports/2026-10"])
def test_pages_refuse_an_unauthenticated_request(app, path):
    c = client(app)
    assert c.get(path).status_code == 401
    answer = c.get(path, headers=HTML, follow_redirects=False)  # a browser is sent to the login page
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


@pytest.mark.parametrize("action", ["approve", "decline", "assign"])
def test_forms_refuse_an_unauthenticated_post(app, cws, action):
    work_item_id = an_open_item(cws)
    answer = client(app).post(f"/items/{work_item_id}/{action}", data={"reason": "x", "csrf_token": "x"})
    assert answer.status_code == 401
    assert item(cws, work_item_id)["status"] == "open"


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_a_form_without_its_csrf_token_is_refused(app, cws, token):
    c = client(app, "ann")
    work_item_id = an_open_item(cws)
    data = {"reason": "no token"} | ({} if token is None else {"csrf_token": token})
    for action in ("approve", "decline", "assign"):
        answer = c.post(f"/items/{work_item_id}/{action}", data=data, follow_redirects=False)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert item(cws, work_item_id)["status"] == "open" and not item(cws, work_item_id)["approvals"]
    assert c.post("/users", data={"action": "add", "name": "mallory", "role": "lead", "password": PASSWORD}).status_code == 403


def test_each_roles_permissions(app, cws):
    """finance reads only; specialists and approvers work the queue but do not manage accounts; the lead does."""
    expected_pages = {"fin": 403, "sam": 403, "ann": 403, "lee": 200}  # /users
    for name, users_status in expected_pages.items():
        c = client(app, name)
        for path in PAGES[:-1]:
            assert c.get(path).status_code == 200, (name, path)
        assert c.get("/users").status_code == users_status, name
    fin = client(app, "fin")
    token = csrf_of(fin)
    work_item_id = an_open_item(cws)
    for action in ("approve", "decline", "assign"):
        answer = fin.post(f"/items/{work_item_id}/{action}", data={"csrf_token": token, "reason": "x"}, follow_redirects=False)
        assert answer.status_code == 403, action
    assert "Approve" not in fin.get(f"/items/{work_item_id}").text  # finance is shown no action
    lee = client(app, "lee")
    answer = lee.post("/users", data={"csrf_token": csrf_of(lee, "/users"), "action": "add", "name": "newbie",
                                      "role": "specialist", "password": PASSWORD}, follow_redirects=True)
    assert "newbie added" in answer.text
    sam = client(app, "sam")
    answer = sam.post("/users", data={"csrf_token": csrf_of(sam), "action": "add", "name": "mallory", "role": "lead",
                                      "password": PASSWORD})
    assert answer.status_code == 403


def test_a_specialist_assigns_and_declines_with_a_reason(app, cws):
    sam = client(app, "sam")
    work_item_id = an_open_item(cws, requires_approval=False, exclude=(cws.four_eyes_item,))
    token = csrf_of(sam)
    sam.post(f"/items/{work_item_id}/assign", data={"csrf_token": token})
    page = sam.get(f"/queue?assignee=me").text
    assert f'data-item="{work_item_id}"' in page
    refused = sam.post(f"/items/{work_item_id}/decline", data={"csrf_token": token, "reason": " "}).text
    assert "needs a --reason" in refused or "reason" in refused
    assert item(cws, work_item_id)["status"] == "open"
    sam.post(f"/items/{work_item_id}/decline", data={"csrf_token": token, "reason": "customer withdrew the claim"})
    settled = item(cws, work_item_id)
    assert settled["status"] == "declined" and settled["decided_by"] == "sam"
    trail = [(e["action"], e["by"], e["channel"]) for e in settled["events"]]
    assert ("assigned", "sam", "console") in trail and ("declined", "sam", "console") in trail


def test_four_eyes_one_console_account_never_gives_both_approvals(app, cws):
    """A refund over $100: sam (specialist) proposes, sam again is refused, sam cannot settle it, ann (approver)
    settles it; ann alone twice is refused on another such item."""
    work_item_id = cws.four_eyes_item
    sam, ann = client(app, "sam"), client(app, "ann")
    first = sam.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(sam)}).text
    assert "approval 1 of 2 recorded by sam" in first
    again = sam.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(sam)}).text
    assert "four eyes" in again and item(cws, work_item_id)["status"] == "open"
    second = ann.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(ann)}).text
    assert f"{work_item_id} approved by sam and ann" in second
    done = item(cws, work_item_id)
    assert done["status"] == "approved" and done["approvals"] == ("sam", "ann")
    assert [e["channel"] for e in done["events"] if e["action"] in ("approval_recorded", "approved")] == ["console", "console"]


def test_a_specialist_cannot_give_the_settling_approval(app, cws):
    engine = queue_engine(cws.queue_url)
    from workitems.store import raise_item

    work_item_id, _ = raise_item(engine, {"kind": "credit_note", "rule": "R1", "customer_id": "c-test",
                                          "invoice_number": "BO-209901-000001", "amount": Decimal("250.00"),
                                          "reason": "test: restated lower"}, raised_by="tests")
    engine.dispose()
    ann, sam = client(app, "ann"), client(app, "sam")
    ann.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(ann)})
    answer = sam.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(sam)}).text
    assert "needs an approver" in answer and item(cws, work_item_id)["status"] == "open"
    assert ann.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(ann)}).status_code == 200
    assert item(cws, work_item_id)["status"] == "open"  # ann twice is still one person


@pytest.mark.parametrize("console_first", [True, False])
def test_a_console_account_and_the_os_user_of_that_name_are_one_person(app, cws, tmp_path, console_first):
    """Console account `<the OS user running the tests>` and the real `billops workitems approve` run by that
    OS user: whichever comes first, the second is refused."""
    from workitems.store import raise_item

    engine = queue_engine(cws.queue_url)
    work_item_id, _ = raise_item(engine, {"kind": "refund", "rule": "R2", "customer_id": "c-test",
                                          "invoice_number": f"BO-209901-00000{2 + console_first}", "charge_id": f"ch_{console_first}",
                                          "amount": Decimal("120.00"), "reason": "test: duplicate charge"}, raised_by="tests")
    engine.dispose()
    try:
        accounts.add_user(accounts.accounts_engine(cws.queue_url), ME.upper(), "approver", PASSWORD, by="tests")
    except accounts.AccountError:
        pass  # the other parametrisation added it
    me = client(app, ME.upper())
    command = Workspace.at(tmp_path)
    env = {"BILLOPS_QUEUE_URL": cws.queue_url, "BILLOPS_PUBLISHED": str(tmp_path / "published")}
    if console_first:
        assert "approval 1 of 2" in me.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(me)}).text
        result = command.billops("workitems", "approve", work_item_id, env=env)
        assert result.returncode == 1 and "four eyes" in result.stderr, result.stderr
    else:
        result = command.billops("workitems", "approve", work_item_id, env=env)
        assert result.returncode == 0 and "approval 1 of 2" in result.stdout, result.stderr
        answer = me.post(f"/items/{work_item_id}/approve", data={"csrf_token": csrf_of(me)}).text
        assert "four eyes" in answer
    assert item(cws, work_item_id)["status"] == "open" and len(item(cws, work_item_id)["approvals"]) == 1


def test_repeated_failed_logins_are_slowed_even_with_the_right_password(app, cws):
    c = TestClient(app)
    engine = accounts.accounts_engine(cws.queue_url)
    accounts.add_user(engine, "victim", "finance", PASSWORD, by="tests")
    for _ in range(accounts.FREE_FAILURES):
        assert c.post("/login", data={"name": "victim", "password": "wrong password!"}).status_code == 401
    slowed = c.post("/login", data={"name": "victim", "password": PASSWORD}, follow_redirects=False)
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1
    assert "Wrong name or password" not in slowed.text and PASSWORD not in slowed.text
    with engine.begin() as conn:  # the wait has passed
        conn.execute(accounts.login_failures.update().values(at=accounts.now() - timedelta(minutes=14)))
    assert c.post("/login", data={"name": "victim", "password": PASSWORD}, follow_redirects=False).status_code == 303
    with engine.begin() as conn:  # the test client's address is every test's: forget its failures
        conn.execute(accounts.login_failures.delete())
    with engine.connect() as conn:
        stored = conn.execute(sa.select(accounts.users.c.password_hash).where(accounts.users.c.name == "victim")).scalar()
        logged = " ".join(str(r) for r in conn.execute(sa.select(accounts.events)).all())
    assert stored.startswith("$argon2id$") and PASSWORD not in logged and "login_failed" in logged


def test_sessions_expire_and_end_when_the_account_is_disabled(app, cws):
    c = client(app, "fin")
    assert c.get("/queue").status_code == 200
    engine = accounts.accounts_engine(cws.queue_url)
    with engine.begin() as conn:
        conn.execute(accounts.sessions.update().values(last_seen_at=accounts.now() - timedelta(minutes=61)))
    assert c.get("/queue").status_code == 401
    c = client(app, "fin")
    accounts.set_disabled(engine, "fin", True, by="tests")
    assert c.get("/queue").status_code == 401
    assert TestClient(app).post("/login", data={"name": "fin", "password": PASSWORD}).status_code == 401
    accounts.set_disabled(engine, "fin", False, by="tests")


def test_the_proxy_header_is_believed_only_from_a_trusted_proxy(cws):
    trusted = create_app(cws.published, cws.queue_url,
                         settings=cws.settings(proxy_header="X-Remote-User", trusted_proxies=("testclient",)))
    untrusted = create_app(cws.published, cws.queue_url,
                           settings=cws.settings(proxy_header="X-Remote-User", trusted_proxies=("10.0.0.1",)))
    assert TestClient(trusted).get("/queue", headers={"X-Remote-User": "ann"}).status_code == 200
    assert TestClient(trusted).get("/queue", headers={"X-Remote-User": "nobody-here"}).status_code == 401
    assert TestClient(untrusted).get("/queue", headers={"X-Remote-User": "ann"}).status_code == 401
    page = TestClient(trusted).get("/queue", headers={"X-Remote-User": "ANN"}).text
    assert 'id="whoami">ann (approver)' in page


def cells(html: str) -> dict[tuple[str, str], str]:
    return {(k, m): v for k, m, v in re.findall(r'data-kpi="(\w+)" data-month="([\d-]+)" data-value="([^"]*)"', html)}


def test_the_kpi_page_shows_the_marts_values(app, cws):
    from console.kpis import MARTS

    shown = cells(client(app, "fin").get("/kpis").text)
    compared = expected = 0
    for mart, (month_column, columns) in MARTS.items():
        where = " WHERE dimension = 'all'" if mart == "kpi_support_monthly" else ""
        rows = published(cws, f"SELECT {month_column}, {', '.join(columns)} FROM marts.{mart}{where} ORDER BY 1")
        assert rows and len(rows) == sum(1 for kpi, _ in shown if kpi == columns[0])  # every month, none more
        for month, *values in rows:
            for column, value in zip(columns, values):
                assert shown[(column, month.strftime("%Y-%m"))] == ("" if value is None else str(value)), (mart, column)
                compared += 1
        expected += len(rows) * len(columns)
    assert compared == expected > 0
    october = published(cws, "SELECT invoiced_amount, invoice_accuracy_rate FROM marts.kpi_billing_monthly "
                             "WHERE month = DATE '2026-10-01'")[0]
    page = client(app, "fin").get("/kpis").text
    assert f"${october[0]:,.2f}" in page and f"{(october[1] * 100).quantize(Decimal('0.01'))} %" in page
    assert "/static/plotly.min.js" in page and "cdn" not in page.lower()


def test_the_report_is_self_contained_and_equal_to_the_marts(app, cws, tmp_path):
    from console.published import PublishedCopy
    from console.report import write_report

    engine = queue_engine(cws.queue_url)
    path = write_report(PublishedCopy(cws.published), engine, "2026-10", tmp_path / "r.html")
    engine.dispose()
    html = path.read_text()
    assert "plotly.js v" in html  # Plotly's own script, inlined
    outside_scripts = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.DOTALL)
    assert not re.search(r"\b(src|href)=|<link|https?://", outside_scripts), "the report loads something from elsewhere"
    shown = {k: v for k, v in re.findall(r'data-kpi="(\w+)" data-value="([^"]*)"', html)}
    billing = published(cws, "SELECT * FROM marts.kpi_billing_monthly WHERE month = DATE '2026-10-01'")[0]
    columns = [r[0] for r in published(cws, "SELECT column_name FROM duckdb_columns() WHERE table_name = "
                                            "'kpi_billing_monthly' ORDER BY column_index")]
    for column, value in zip(columns[1:], billing[1:]):
        assert shown[column] == ("" if value is None else str(value)), column
    (content_hash,), = published(cws, "SELECT content_sha256 FROM marts.issued_months WHERE billing_month = DATE '2026-10-01'")
    assert content_hash in html
    assert client(app, "fin").get("/reports/2026-10").text.count("data-kpi=") == html.count("data-kpi=")


def test_an_invoice_shows_each_lines_landed_files_and_record_counts(app, cws):
    """The invoice page's sources equal marts.invoice_line_sources, and those equal the accepted records counted
    straight from the chain's landed usage (the warehouse's raw view of October), file by file."""
    (number, customer), = published(cws, """
        SELECT s.invoice_number, s.customer_id FROM marts.invoice_line_sources s
        WHERE s.billing_month = DATE '2026-10-01' GROUP BY ALL ORDER BY count(*) DESC, 1 LIMIT 1""")
    page = client(app, "fin").get(f"/invoices/{number}").text
    rows = page.split('data-line="')[1:]
    shown = {(int(r.split('"')[0]), f, int(n)) for r in rows for f, n in re.findall(r'data-file="([^"]+)" data-records="(\d+)"', r)}
    mart = set(published(cws, "SELECT line_number, source_file, records FROM marts.invoice_line_sources "
                              "WHERE invoice_number = ?", [number]))
    assert shown == mart and mart
    lines = published(cws, "SELECT line_number, sku, resource_id FROM marts.invoice_lines WHERE invoice_number = ?", [number])
    con = duckdb.connect(str(cws.chain_root / "warehouse.duckdb"), read_only=True)
    try:
        counted = set()
        for line_number, sku, resource in lines:
            counted |= {(line_number, f, n) for f, n in con.execute(
                "SELECT source_file, count(*) FROM raw.usage_month WHERE customer_id = ? AND sku = ? "
                "AND (? IS NULL OR resource_id = ?) GROUP BY 1", [customer, sku, resource, resource]).fetchall()}
    finally:
        con.close()
    assert counted == mart
    (content_hash,), = published(cws, "SELECT content_sha256 FROM marts.issued_months WHERE billing_month = DATE '2026-10-01'")
    assert f'id="content-hash">{content_hash}<' in page
    search = client(app, "fin").get(f"/search?q={number.lower()}", follow_redirects=False)
    assert search.status_code == 303 and search.headers["location"] == f"/invoices/{number}"
    customer_page = client(app, "fin").get(f"/customers/{customer}").text
    assert number in customer_page


def test_readers_keep_reading_while_the_published_copy_is_swapped(app, cws):
    """A close ends by swapping the published copy (warehouse/published.py); a queue decision refreshes it the
    same way. Readers of the console during swaps neither fail nor hold the swap up."""
    from workitems.mirror import publish_work_items

    failures, reads, stop = [], [0], threading.Event()

    def read() -> None:
        c = client(app, "fin")
        while not stop.is_set():
            for path in ("/kpis", "/invoices/BO-202610-000001", "/queue"):
                answer = c.get(path)
                reads[0] += 1
                if answer.status_code != 200:
                    failures.append((path, answer.status_code, answer.text[:300]))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    engine = queue_engine(cws.queue_url)
    try:
        for _ in range(4):
            publish_work_items(cws.published, engine)
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=60)
        engine.dispose()
    assert failures == [] and reads[0] > 0
