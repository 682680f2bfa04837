"""The webhook benchmark's floor: a bare Starlette app under the same uvicorn, answering 204 to any POST
after reading its body. The gap between this and callvault's webhook is the cost of callvault's checks."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


app = Starlette(routes=[Route("/twilio/recording-status", accept, methods=["POST"])])
