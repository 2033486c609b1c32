"""The billing team's console (issue 17, docs/console.md): one Starlette application, its routes and its state.

`create_app` takes where to read (the published copy's folder) and the operational store's URL,
so the command (`billops console`) and the tests build the same application; nothing here reads
the environment (config/settings.py does) and nothing opens the warehouse. Every script and
style is served from this package or the plotly wheel: the console works with no network.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from config.settings import ConsoleSettings, console_settings
from console import accounts, customers, kpis, queue, report, users
from console.charts import PLOTLY_JS
from console.published import NotPublished, PublishedCopy
from console.web import HERE, Context, LoginRequired, render, session
from workitems.store import queue_engine


async def home(request: Request):
    return RedirectResponse("/queue" if session(request) else "/login", status_code=303)


async def plotly_js(request: Request):
    return FileResponse(PLOTLY_JS, media_type="application/javascript")


async def _login_required(request: Request, exc: Exception):
    return RedirectResponse("/login", status_code=303)


async def _http_error(request: Request, exc: HTTPException):
    if "text/html" in request.headers.get("accept", ""):
        return render(request, "error.html", status_code=exc.status_code, status=exc.status_code, detail=exc.detail)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


async def _not_published(request: Request, exc: NotPublished):
    return render(request, "error.html", status_code=503, status=503, detail=str(exc))


async def _headers(request: Request, call_next):
    response = await call_next(request)
    token = request.scope.get("console_new_token")
    if token:  # a person named by the trusted proxy got a session: give the browser its cookie
        users.set_cookie(request, response, token)
    # Everything the pages load comes from here: no other origin, no framing by another site.
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                                "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if isinstance(response, HTMLResponse) or response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


ROUTES = [
    Route("/", home),
    Route("/login", users.login_page, methods=["GET"]),
    Route("/login", users.login, methods=["POST"]),
    Route("/logout", users.logout, methods=["POST"]),
    Route("/queue", queue.queue_page),
    Route("/items/{work_item_id}", queue.item_page),
    Route("/items/{work_item_id}/approve", queue.approve, methods=["POST"]),
    Route("/items/{work_item_id}/decline", queue.decline, methods=["POST"]),
    Route("/items/{work_item_id}/assign", queue.assign_to_me, methods=["POST"]),
    Route("/search", customers.search),
    Route("/customers/{customer_id}", customers.customer_page),
    Route("/invoices/{invoice_number}", customers.invoice_page),
    Route("/kpis", kpis.kpis_page),
    Route("/team", kpis.team_page),
    Route("/breaches", kpis.breaches_page),
    Route("/reports", report.reports_page),
    Route("/reports/{month}", report.report_page),
    Route("/users", users.users_page, methods=["GET"]),
    Route("/users", users.users_change, methods=["POST"]),
    Route("/static/plotly.min.js", plotly_js),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]


def create_app(published_folder: Path, queue_url: str | None = None, settings: ConsoleSettings | None = None) -> Starlette:
    """The console on a published copy's folder and the operational store (None: the settings' one)."""
    app = Starlette(routes=ROUTES, middleware=[Middleware(BaseHTTPMiddleware, dispatch=_headers)], exception_handlers={
        LoginRequired: _login_required, HTTPException: _http_error, NotPublished: _not_published})
    app.state.console = Context(settings=settings or console_settings(), accounts=accounts.accounts_engine(queue_url),
                                queue=queue_engine(queue_url), published=PublishedCopy(published_folder),
                                published_folder=Path(published_folder))

    return app
