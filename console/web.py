"""What every page shares: the templates, who is asking (session or trusted proxy), permissions, CSRF.

Every handler starts with `person = require(request, PERMISSION)`: an unauthenticated request
is sent to the login page (a page) or refused 401 (anything else), a role without the permission
gets 403, and a POST must carry its session's CSRF token in the form (`csrf_token`) or is
refused 403 before anything is read. The identity is the account's name, which is what audit
trails record; the queue compares it with `workitems.identity.person_key` (decisions #90).

The trusted reverse proxy (BILLOPS_CONSOLE_PROXY_HEADER): its header is believed only when the
request's peer address is one of BILLOPS_CONSOLE_TRUSTED_PROXIES, and only for an enabled
account of that name (the role comes from the account). Such a person gets a session cookie
too, so forms carry a CSRF token the same way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.templating import Jinja2Templates

from config.settings import ConsoleSettings
from console import accounts
from console.published import PublishedCopy
from console.roles import PERMISSIONS, may

COOKIE = "billops_session"
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def money(value) -> str:
    """$1,234.56 from a Decimal (never through a float); blank for None."""
    if value is None:
        return ""
    return f"${Decimal(value):,.2f}" if Decimal(value) >= 0 else f"-${-Decimal(value):,.2f}"


def rate(value) -> str:
    """A DECIMAL(9,6) rate as a percentage with two decimals, computed in Decimal."""
    if value is None:
        return "—"
    return f"{(Decimal(value) * 100).quantize(Decimal('0.01'))} %"


def number(value) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else str(value)


templates.env.filters.update(money=money, rate=rate, number=number)


@dataclass
class Context:
    """What the app was started with (app.state.console)."""

    settings: ConsoleSettings
    accounts: Engine
    queue: Engine
    published: PublishedCopy
    published_folder: Path


class LoginRequired(Exception):
    """Raised by `require` for a page request without a session: the app redirects to /login."""


def context(request: Request) -> Context:
    return request.app.state.console


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _proxied_person(request: Request) -> accounts.Person | None:
    ctx = context(request)
    header = ctx.settings.proxy_header
    if not header or client_address(request) not in ctx.settings.trusted_proxies:
        return None
    name = request.headers.get(header)
    return accounts.active_person(ctx.accounts, name) if name else None


def session(request: Request) -> accounts.Session | None:
    """The request's session, from its cookie or, behind a trusted proxy, the account its header names."""
    if "console_session" in request.scope:
        return request.scope["console_session"]
    ctx = context(request)
    found = accounts.session_for(ctx.accounts, request.cookies.get(COOKIE),
                                 timedelta(minutes=ctx.settings.session_minutes))
    proxied = _proxied_person(request)
    if proxied is not None and (found is None or found.person.key != proxied.key):
        token, found = accounts.open_session(ctx.accounts, proxied)
        request.scope["console_new_token"] = token  # the app's middleware sets the cookie on the response
    request.scope["console_session"] = found
    return found


def require(request: Request, permission: str) -> accounts.Person:
    """The person asking, when they may do `permission`; a POST must carry the session's CSRF token
    (checked by `check_csrf`, which form handlers call with the parsed form)."""
    found = session(request)
    if found is None:
        if request.method == "GET" and "text/html" in request.headers.get("accept", "text/html"):
            raise LoginRequired()
        raise HTTPException(401, "log in first")
    if not may(found.person.role, permission):
        raise HTTPException(403, f"the {found.person.role} role may not {permission.replace('_', ' ')}")
    return found.person


async def form_of(request: Request, permission: str) -> tuple[accounts.Person, dict]:
    """The person and the submitted form of a POST, after the session, the permission and the CSRF token."""
    found = session(request)
    if found is None:
        raise HTTPException(401, "log in first")
    form = dict(await request.form())
    if not secrets.compare_digest(str(form.get("csrf_token", "")), found.csrf_token):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page and try again")
    return require(request, permission), form


def render(request: Request, template: str, status_code: int = 200, **values):
    found = session(request)
    values.update(request=request, me=found.person if found else None, csrf=found.csrf_token if found else "",
                  can=(PERMISSIONS.get(found.person.role, frozenset()) if found else frozenset()))
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def back_to(url: str, message: str = "", error: str = "") -> RedirectResponse:
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in (("msg", message), ("err", error)) if v})
    return RedirectResponse(url + (("&" if "?" in url else "?") + query if query else ""), status_code=303)
