"""A single sign-on proxy for tests, as oauth2-proxy behaves once a user has signed in: every
request (HTTP and Streamlit's websocket) is passed to the app with the user's name in a header.
Built on what Streamlit itself installs (starlette, uvicorn, httpx, websockets).

Run as `python -m tests.helpers.sso_proxy LISTEN_PORT UPSTREAM_PORT USER [HEADER]`."""

from __future__ import annotations

import asyncio
import sys

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "host"}


def make_app(upstream: int, user: str, header: str) -> Starlette:
    base = f"127.0.0.1:{upstream}"

    async def http(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with httpx.AsyncClient() as client:
            reply = await client.request(request.method, f"http://{base}{request.url.path}",
                                         params=request.query_params, headers={**headers, header: user},
                                         content=await request.body())
        return Response(reply.content, status_code=reply.status_code,
                        headers={k: v for k, v in reply.headers.items() if k.lower() not in HOP_BY_HOP})

    async def stream(browser: WebSocket) -> None:
        asked = browser.scope.get("subprotocols") or None
        async with websockets.connect(f"ws://{base}/_stcore/stream", additional_headers={header: user},
                                      subprotocols=asked, max_size=None) as app:
            await browser.accept(subprotocol=app.subprotocol)

            async def down() -> None:
                async for message in app:
                    if isinstance(message, bytes):
                        await browser.send_bytes(message)
                    else:
                        await browser.send_text(message)

            pump = asyncio.create_task(down())
            try:
                while True:
                    message = await browser.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    await app.send(message["bytes"] if message.get("bytes") is not None else message["text"])
            finally:
                pump.cancel()

    return Starlette(routes=[WebSocketRoute("/_stcore/stream", stream),
                             Route("/{path:path}", http, methods=["GET", "POST", "HEAD"])])


def main() -> None:
    listen, upstream, user = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    header = sys.argv[4] if len(sys.argv) > 4 else "X-Forwarded-User"
    uvicorn.run(make_app(upstream, user, header), host="127.0.0.1", port=listen, log_level="warning")


if __name__ == "__main__":
    main()
