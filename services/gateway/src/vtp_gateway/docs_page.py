"""``GET /api/docs``: Swagger UI over the merged document, served offline.

The page and its assets are public: they hold no API data, and a browser cannot send a
bearer header when it navigates. The page asks for a token (kept in the tab's session
storage) and sends it both for the document, which needs one, and for "Try it out" calls.
Swagger UI's files come from the `swagger-ui-bundle-v2` wheel, never from a CDN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

DOCS = "/api/docs"
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
PUBLIC_PATHS = (DOCS, f"{DOCS}/init.js", *(f"{DOCS}/{name}" for name in ASSETS))
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>vtp platform API</title>
  <link rel="stylesheet" href="{DOCS}/swagger-ui.css">
  <style>
    #token-form {{ font-family: sans-serif; padding: 12px 20px; background: #f4f4f4; }}
    #token {{ width: 32em; }}
  </style>
</head>
<body>
  <form id="token-form">
    <label for="token">API token</label>
    <input id="token" type="password" autocomplete="off" placeholder="vtp_...">
    <button type="submit">Load the API</button>
    <span id="token-state"></span>
  </form>
  <div id="swagger-ui"></div>
  <script src="{DOCS}/swagger-ui-bundle.js"></script>
  <script src="{DOCS}/init.js"></script>
</body>
</html>
"""

# The document needs a token, so the page asks for one first and adds it to every request.
INIT_JS = """(function () {
  "use strict";
  var KEY = "vtp-api-token";
  var form = document.getElementById("token-form");
  var input = document.getElementById("token");
  var state = document.getElementById("token-state");

  function start(token) {
    state.textContent = "token set for this tab";
    window.ui = SwaggerUIBundle({
      url: "/api/v1/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      requestInterceptor: function (request) {
        if (!request.headers.Authorization) {
          request.headers.Authorization = "Bearer " + token;
        }
        return request;
      }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = input.value.trim();
    if (!token) {
      return;
    }
    sessionStorage.setItem(KEY, token);
    input.value = "";
    start(token);
  });

  var saved = sessionStorage.getItem(KEY);
  if (saved) {
    start(saved);
  }
})();
"""


def docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers=_HEADERS)

    @router.get(f"{DOCS}/init.js")
    async def init() -> Response:
        return Response(INIT_JS, media_type="text/javascript", headers=_HEADERS)

    for name, media_type in ASSETS.items():
        router.add_api_route(f"{DOCS}/{name}", _asset(name, media_type), methods=["GET"])
    return router


def _asset(name: str, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
    """One vendored Swagger UI file; only the listed ones are served, no path from the request."""
    path = str(swagger_ui_path / name)

    async def serve() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers=_HEADERS)

    return serve
