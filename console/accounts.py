"""The console's people: accounts, password hashes, sessions and failed logins, in the operational store.

Why the operational store (warehouse/ops_store.py, BILLOPS_QUEUE_URL) and not a file of its own:
an approval and the account that gave it must be read together, and the queue's four eyes must
see a console account and an operating-system user of the same name as one person. Accounts are
keyed by `workitems.identity.person_key`, the key the command line's audit trail compares, so
`alice`, `Alice` and `ali\u200bce` are one account, and console `alice` is OS user `alice`.

Passwords are argon2id hashes (argon2-cffi's defaults); a password never leaves this module
except as a hash. Sessions are server-side: the browser holds a random token, the store holds
only its SHA-256 with the session's CSRF token and times, so a copy of the store opens no session,
and logging out or disabling an account ends its sessions at once. Failed logins are counted per
account and per client address; past `FREE_FAILURES` in `FAILURE_WINDOW`, each further attempt
must wait twice as long as the one before (up to `MAX_WAIT`), whatever the password.
Account changes and logins are kept in `console_events` (who, what, whom, through which channel).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine

from console.roles import ROLES
from warehouse.ops_store import ops_engine
from workitems.identity import person_key, visible

FREE_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MAX_WAIT = timedelta(minutes=5)
ABSOLUTE_SESSION = timedelta(hours=12)  # a shift, whatever the activity
MIN_PASSWORD = 10

metadata = sa.MetaData()

users = sa.Table(
    "console_users", metadata,
    sa.Column("person_key", sa.String(128), primary_key=True),  # workitems.identity.person_key(name)
    sa.Column("name", sa.String(128), nullable=False),          # as the lead typed it
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(256)),                 # argon2id; NULL: single sign-on only
    sa.Column("disabled", sa.Boolean(), nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

sessions = sa.Table(
    "console_sessions", metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("person_key", sa.String(128), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(), nullable=False),
)

login_failures = sa.Table(
    "console_login_failures", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(160), nullable=False, index=True),  # `user:<key>` or `client:<address>`
    sa.Column("at", sa.DateTime(), nullable=False),
)

events = sa.Table(
    "console_events", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("by", sa.String(128), nullable=False),      # the person acting (an OS user for `billops users`)
    sa.Column("channel", sa.String(16), nullable=False),  # console | command
    sa.Column("action", sa.String(32), nullable=False),   # user_added, user_disabled, password_set, login, ...
    sa.Column("subject", sa.String(128)),                 # the account acted on
    sa.Column("note", sa.Text()),
)


class AccountError(Exception):
    """A change to the accounts that cannot be made; the message says why."""


@dataclass(frozen=True)
class Person:
    """Who is logged in: the account's name (the identity recorded in audit trails) and role."""

    name: str
    role: str
    key: str


@dataclass(frozen=True)
class Session:
    person: Person
    csrf_token: str


_hasher = PasswordHasher()


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def accounts_engine(url: str | None = None) -> Engine:
    """The operational store with the console's tables, created where missing."""
    engine = ops_engine(url)
    metadata.create_all(engine)
    return engine


def _event(conn: sa.Connection, by: str, channel: str, action: str, subject: str | None, note: str | None = None) -> None:
    conn.execute(events.insert().values(at=now(), by=by, channel=channel, action=action, subject=subject, note=note))


def _check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not person_key(name) or name != visible(name) or len(name) > 64:
        raise AccountError(f"{visible(name)!r} is not a usable account name (printable, 1-64 characters)")
    return name


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def add_user(engine: Engine, name: str, role: str, password: str | None, by: str, channel: str = "command") -> Person:
    """A new account; `password` None makes a single-sign-on-only account (the proxy names it)."""
    name = _check_name(name)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    hashed = None if password is None else _hasher.hash(_check_password(password))
    key = person_key(name)
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.name).where(users.c.person_key == key)).first():
            raise AccountError(f"an account for {name} exists already (names are compared as people read them)")
        conn.execute(users.insert().values(person_key=key, name=name, role=role, password_hash=hashed,
                                           disabled=False, created_at=now(), updated_at=now()))
        _event(conn, by, channel, "user_added", name, f"role {role}")
    return Person(name, role, key)


def _existing(conn: sa.Connection, name: str) -> sa.Row:
    row = conn.execute(sa.select(users).where(users.c.person_key == person_key(name or ""))).first()
    if row is None:
        raise AccountError(f"no account {visible(name)}")
    return row


def set_password(engine: Engine, name: str, password: str, by: str, channel: str = "command") -> None:
    hashed = _hasher.hash(_check_password(password))
    with engine.begin() as conn:
        row = _existing(conn, name)
        conn.execute(users.update().where(users.c.person_key == row.person_key)
                     .values(password_hash=hashed, updated_at=now()))
        conn.execute(sessions.delete().where(sessions.c.person_key == row.person_key))
        _event(conn, by, channel, "password_set", row.name)


def set_disabled(engine: Engine, name: str, disabled: bool, by: str, channel: str = "command") -> None:
    """Disable (ending every session of the account at once) or enable an account."""
    with engine.begin() as conn:
        row = _existing(conn, name)
        conn.execute(users.update().where(users.c.person_key == row.person_key)
                     .values(disabled=disabled, updated_at=now()))
        if disabled:
            conn.execute(sessions.delete().where(sessions.c.person_key == row.person_key))
        _event(conn, by, channel, "user_disabled" if disabled else "user_enabled", row.name)


def list_users(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(users.c.name, users.c.role, users.c.disabled, users.c.created_at,
                      (users.c.password_hash.is_not(None)).label("has_password")).order_by(users.c.person_key))]


def active_person(engine: Engine, name: str) -> Person | None:
    """The enabled account of that name (for the trusted proxy's header), or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.person_key == person_key(name or ""))).first()
    return None if row is None or row.disabled else Person(row.name, row.role, row.person_key)


# --- logging in -------------------------------------------------------------------------------


def wait_before_next_attempt(engine: Engine, name: str, client: str) -> timedelta:
    """How long the next attempt for this account or from this client must still wait (zero: none)."""
    since = now() - FAILURE_WINDOW
    worst = timedelta(0)
    with engine.connect() as conn:
        for subject in (f"user:{person_key(name or '')}", f"client:{client}"):
            times = [r[0] for r in conn.execute(
                sa.select(login_failures.c.at).where(login_failures.c.subject == subject, login_failures.c.at >= since)
                .order_by(login_failures.c.at))]
            if len(times) >= FREE_FAILURES:
                wait = min(timedelta(seconds=2 ** (len(times) - FREE_FAILURES)), MAX_WAIT)
                worst = max(worst, times[-1] + wait - now())
    return worst


def log_in(engine: Engine, name: str, password: str, client: str) -> tuple[str, Session] | None:
    """A new session (its token for the cookie, and the session) when the password matches an enabled
    account; None otherwise, the failure counted. The caller checks `wait_before_next_attempt` first."""
    key = person_key(name or "")
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.person_key == key)).first()
    ok = False
    if row is not None and row.password_hash and not row.disabled:
        try:
            ok = _hasher.verify(row.password_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    else:
        _hasher.hash(password or "-")  # the same work as a wrong password: timing does not tell which names exist
    with engine.begin() as conn:
        if not ok:
            conn.execute(login_failures.insert(), [{"subject": f"user:{key}", "at": now()},
                                                   {"subject": f"client:{client}", "at": now()}])
            _event(conn, visible(name or "")[:128] or "-", "console", "login_failed", None, f"from {client}")
            return None
        conn.execute(login_failures.delete().where(login_failures.c.subject == f"user:{key}"))
        if _hasher.check_needs_rehash(row.password_hash):
            conn.execute(users.update().where(users.c.person_key == key)
                         .values(password_hash=_hasher.hash(password)))
        _event(conn, row.name, "console", "login", row.name, f"from {client}")
    person = Person(row.name, row.role, key)
    return open_session(engine, person)


def open_session(engine: Engine, person: Person) -> tuple[str, Session]:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(sessions.insert().values(token_sha256=_digest(token), person_key=person.key, csrf_token=csrf,
                                              created_at=now(), last_seen_at=now()))
    return token, Session(person, csrf)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_for(engine: Engine, token: str | None, idle: timedelta) -> Session | None:
    """The live session of a cookie's token (its last use moved to now), or None: unknown, idle for longer
    than `idle`, older than a shift, or its account disabled."""
    if not token:
        return None
    digest = _digest(token)
    with engine.begin() as conn:
        row = conn.execute(sa.select(sessions, users.c.name, users.c.role, users.c.disabled)
                           .join(users, users.c.person_key == sessions.c.person_key)
                           .where(sessions.c.token_sha256 == digest)).first()
        if row is None:
            return None
        if row.disabled or now() - row.last_seen_at > idle or now() - row.created_at > ABSOLUTE_SESSION:
            conn.execute(sessions.delete().where(sessions.c.token_sha256 == digest))
            return None
        conn.execute(sessions.update().where(sessions.c.token_sha256 == digest).values(last_seen_at=now()))
    return Session(Person(row.name, row.role, row.person_key), row.csrf_token)


def log_out(engine: Engine, token: str | None) -> None:
    if token:
        with engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.token_sha256 == _digest(token)))


def record(engine: Engine, by: str, action: str, subject: str | None = None, note: str | None = None,
           channel: str = "console") -> None:
    """One line of the console's own audit (account changes, logins; queue actions are in the item's trail)."""
    with engine.begin() as conn:
        _event(conn, by, channel, action, subject, note)
