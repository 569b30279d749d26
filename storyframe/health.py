"""Health checks for whatever runs Storyframe: `/healthz` answers while the process serves,
`/readyz` only while the database answers too."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storyframe.runtime import Runtime


def health_routes(runtime: Runtime) -> list[Route]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            await runtime.services_for(0).reads.ping()
        except Exception as error:  # any failure to answer means not ready
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, 503)
        return JSONResponse({"status": "ok"})

    return [Route("/healthz", healthz), Route("/readyz", readyz)]
