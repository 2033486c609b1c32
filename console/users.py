"""Logging in and out, and the lead's page of accounts (add, disable, enable, set a password).

A failed login says only that the name or password is wrong (never which). Past a few
failures for an account or from an address, attempts must wait longer and longer, whatever
the password (console/accounts.py); the wait is answered 429 without checking the password.
The session cookie is HttpOnly and SameSite=Strict (and Secure when the console is served over
HTTPS), so another site can neither read it nor send it with a forged form.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse

from console import accounts
from console.roles import MANAGE_USERS, ROLES
from console.web import COOKIE, back_to, client_address, context, form_of, render, require, session


async def login_page(request: Request):
    if session(request) is not None:
        return RedirectResponse("/queue", status_code=303)
    return render(request, "login.html", error=request.query_params.get("err"), name="")


async def login(request: Request):
    ctx = context(request)
    form = dict(await request.form())
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    client = client_address(request)
    wait = accounts.wait_before_next_attempt(ctx.accounts, name, client)
    if wait > timedelta(0):
        seconds = int(wait.total_seconds()) + 1
        response = render(request, "login.html", status_code=429, name=name,
                          error=f"Too many failed attempts: wait {seconds} s before trying again.")
        response.headers["Retry-After"] = str(seconds)
        return response
    opened = accounts.log_in(ctx.accounts, name, password, client)
    if opened is None:
        return render(request, "login.html", status_code=401, name=name, error="Wrong name or password.")
    token, _ = opened
    response = RedirectResponse("/queue", status_code=303)
    set_cookie(request, response, token)
    return response


def set_cookie(request: Request, response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        max_age=int(accounts.ABSOLUTE_SESSION.total_seconds()), path="/")


async def logout(request: Request):
    found = session(request)
    if found is not None:
        await form_of(request, "read")  # a forged form cannot log anyone out either
        accounts.log_out(context(request).accounts, request.cookies.get(COOKIE))
        accounts.record(context(request).accounts, found.person.name, "logout", found.person.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def users_page(request: Request):
    require(request, MANAGE_USERS)
    q = request.query_params
    return render(request, "users.html", users=accounts.list_users(context(request).accounts), roles=ROLES,
                  msg=q.get("msg"), err=q.get("err"))


async def users_change(request: Request):
    """One form action on the accounts: add, disable, enable or passwd (the lead only)."""
    me, form = await form_of(request, MANAGE_USERS)
    engine = context(request).accounts
    action, name = form.get("action"), str(form.get("name", ""))
    try:
        if action == "add":
            accounts.add_user(engine, name, str(form.get("role", "")), str(form.get("password", "")) or None,
                              by=me.name, channel="console")
            message = f"{name} added"
        elif action in ("disable", "enable"):
            accounts.set_disabled(engine, name, action == "disable", by=me.name, channel="console")
            message = f"{name} {action}d"
        elif action == "passwd":
            accounts.set_password(engine, name, str(form.get("password", "")), by=me.name, channel="console")
            message = f"password of {name} set"
        else:
            return back_to("/users", error=f"unknown action {action!r}")
    except accounts.AccountError as exc:
        return back_to("/users", error=str(exc))
    return back_to("/users", message=message)
