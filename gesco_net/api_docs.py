"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served without a CDN.

FastAPI's own pages load their JavaScript, CSS, favicon (and ReDoc's fonts) from public
CDNs, so on a machine without internet they are blank. Here the pages are built with
FastAPI's documented self-hosting helpers (``get_swagger_ui_html``, ``get_redoc_html``)
pointing at files served by the app itself, under :data:`ASSETS_URL`:

* ``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js``, ``favicon.png``
  come from the ``fastapi-offline`` package (MIT licence; it bundles the Swagger UI and
  ReDoc builds, themselves Apache-2.0 and MIT), found on disk with
  :mod:`importlib.resources`; only its files are used, not its code;
* ReDoc's Google Fonts link is left out (``with_google_fonts=False``): the page falls
  back to the browser's fonts;
* ReDoc's script draws a logo from ``cdn.redoc.ly`` in its sidebar: the script is served
  with that address replaced by :data:`BLANK_IMAGE` (a blank inline SVG, nothing fetched);
* Swagger UI's validator badge (an image from ``validator.swagger.io`` for a spec not on
  localhost) is turned off (``validatorUrl: null``).

Use: ``FastAPI(..., docs_url=None, redoc_url=None)``, then :func:`add_offline_docs`.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

#: where the bundled assets are served
ASSETS_URL = "/docs-assets"
#: the files every page needs (all must exist in the bundle)
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
#: images ReDoc's script would load from its CDN (its sidebar logo)
REDOC_CDN_IMAGE = re.compile(r"https://cdn\.redoc\.ly/[^\"'`\s]+")
#: what they are replaced with: a blank 16 x 16 inline SVG
BLANK_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='16' height='16'/%3E"


def local_redoc_js(folder: Path) -> bytes:
    """``redoc.standalone.js`` of the bundle with every CDN image address replaced by :data:`BLANK_IMAGE`."""
    text = (folder / "redoc.standalone.js").read_text(encoding="utf-8")
    return REDOC_CDN_IMAGE.sub(BLANK_IMAGE, text).encode("utf-8")


def assets_dir() -> Path:
    """Folder of the bundled Swagger UI / ReDoc files.

    Raises:
        RuntimeError: the ``fastapi-offline`` package is missing or lacks a file (a broken
            install: the pages would be blank, so the app refuses to start instead).
    """
    try:
        folder = Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        raise RuntimeError("the API docs need the fastapi-offline package (pip install fastapi-offline)") from None
    missing = [f for f in ASSET_FILES if not (folder / f).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline at {folder} lacks {missing}; reinstall it")
    return folder


def add_offline_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Mount the assets and add ``/docs``, its OAuth2 redirect page and ``/redoc`` to ``app``.

    ``app`` must have been created with ``docs_url=None, redoc_url=None``.
    """
    if app.docs_url or app.redoc_url:
        raise ValueError("create the app with docs_url=None, redoc_url=None before adding the offline docs")
    folder = assets_dir()
    redoc_js = local_redoc_js(folder)

    # before the mount, so that this route answers for ReDoc's script
    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False)
    def redoc_script() -> Response:
        return Response(redoc_js, media_type="text/javascript; charset=utf-8")

    app.mount(ASSETS_URL, StaticFiles(directory=folder), name="docs-assets")
    oauth2_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + oauth2_url,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


def add_home(app: FastAPI, target: str) -> None:
    """``GET /`` redirects (307) to ``target`` (a path of this app), so that a browser pointed
    at the service's address lands on a page: the sender's API docs, the receiver's viewer."""
    if not target.startswith("/"):
        raise ValueError(f"the home page must be a path of the app, got {target!r}")

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + target, status_code=307)
