"""The workload a simulated instance runs, shared by every provider simulator.

A rented GPU usually serves a model: an OpenAI-compatible server (vLLM), Ollama, or a notebook
with WebSockets. This app answers the requests those clients send, so the demo and the tests
drive the connect proxy with the real `openai` and `ollama` libraries end to end:

- `GET /v1/models`, `POST /v1/chat/completions` (JSON, or SSE token by token with `stream`),
- `GET /api/tags`, `POST /api/chat` (NDJSON token by token unless `"stream": false`),
- `WS /ws`: echoes text as text and bytes as bytes; the text `bye` closes with code 4001,
- `GET /bytes/{n}` streams n bytes of `pattern_chunks`, `POST /upload` streams the body into a
  count and a SHA-256 (neither holds the whole body), `GET /events` ticks SSE events slowly,
  `GET /sleep/{seconds}` answers late (or not at all to a caller that hung up),
  `ANY /echo/{path}` describes the request, and `GET /login` redirects with a cookie, as web
  apps do.

Each simulator mounts it where its provider documents the workload and wraps it in a `Gate`: a
check of the credentials that provider expects, answering 401 in its own format otherwise. That
check is what proves the proxy replaced the caller's key with the provider's.

`WorkloadState.gate` puts a stream in lockstep for tests: every token after the first waits for
one `release()`, so a client can only see token i while token i+1 does not exist yet, which no
buffering proxy could fake and no timing assumption is needed for.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

PATTERN = bytes(range(256)) * 256  # 64 KiB, the unit `GET /bytes/{n}` repeats
MAX_DOWNLOAD_BYTES = 16 * 1024**3
CLOSE_WORD = "bye"
CLOSE_CODE = 4001
_WORDS = re.compile(r"\S+\s*")

# A provider's credential check: the instance id from the mount path (None where the workload
# has its own address) and the request headers; a Response to refuse, None to let it through.
Gate = Callable[[str | None, Headers], Response | None]


def pattern_chunks(size: int) -> Iterator[bytes]:
    """The bytes `GET /bytes/{size}` sends, in chunks of at most 64 KiB."""
    whole, rest = divmod(size, len(PATTERN))
    yield from itertools.repeat(PATTERN, whole)
    if rest:
        yield PATTERN[:rest]


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in pattern_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class WorkloadState:
    """What one simulator's workloads serve and have seen; tests read and steer it."""

    provider: str
    model: str = "llama3"
    gate: threading.Semaphore | None = None
    gate_timeout_seconds: float = 10.0
    gate_misses: int = 0
    open_requests: int = 0  # `/events` streams and `/sleep` waits still in progress
    requests: Counter[str] = field(default_factory=Counter)
    last_headers: dict[str, str] = field(default_factory=dict)

    def record(self, path: str, headers: Headers) -> None:
        self.requests[path] += 1
        self.last_headers = {name.lower(): value for name, value in headers.items()}

    async def pace(self, index: int, gated: bool) -> bool:
        """Before token `index` of a gated stream, wait for one release of the gate.

        Returns whether the rest of the stream stays gated: a release that never comes is
        counted in `gate_misses` and the stream finishes ungated, so a test fails, not hangs.
        """
        if self.gate is None or not gated or index == 0:
            return gated
        if await anyio.to_thread.run_sync(self.gate.acquire, True, self.gate_timeout_seconds):
            return True
        self.gate_misses += 1
        return False

    def reply(self, messages: Any, max_tokens: Any) -> list[str]:
        """The answer's tokens: a short greeting, or exactly `max_tokens` when asked for."""
        last = ""
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            last = str(messages[-1].get("content") or "")
        words = _WORDS.findall(f"Hello from {self.provider}! You said: {last}") or ["Hello"]
        if isinstance(max_tokens, int) and max_tokens > 0:
            return list(itertools.islice(itertools.cycle(words), max_tokens))
        return words


def create_workload_app(state: WorkloadState, gate: Gate) -> ASGIApp:
    """The workload as an ASGI app behind `gate`; mount it or serve it on its own port."""
    app = FastAPI(title=f"{state.provider} workload", openapi_url=None)
    _openai_routes(app, state)
    _ollama_routes(app, state)
    _utility_routes(app, state)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=offered[0] if offered else None)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") == CLOSE_WORD:
                    await websocket.close(CLOSE_CODE, "closed by the workload")
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                elif message.get("bytes") is not None:
                    await websocket.send_bytes(message["bytes"])
        except WebSocketDisconnect:
            return

    return _Gated(app, state, gate)


class _Gated:
    """Records each request, then lets it through only when the provider's gate does."""

    def __init__(self, app: ASGIApp, state: WorkloadState, gate: Gate) -> None:
        self.app = app
        self.state = state
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        self.state.record(scope["path"], headers)
        refusal = self.gate(scope.get("path_params", {}).get("instance_id"), headers)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await refusal(scope, receive, send)
        else:
            await WebSocket(scope, receive, send).send_denial_response(refusal)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return body if isinstance(body, dict) else {}


def _openai_routes(app: FastAPI, state: WorkloadState) -> None:
    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": state.model, "object": "model", "created": 0, "owned_by": state.provider}
            ],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response | dict[str, Any]:
        body = await _json_body(request)
        model = str(body.get("model") or state.model)
        tokens = state.reply(body.get("messages"), body.get("max_tokens"))
        ident, created = f"chatcmpl-{secrets.token_hex(6)}", int(time.time())
        if body.get("stream"):
            return _event_stream(_completion_chunks(state, tokens, ident, created, model))
        text = "".join(tokens)
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": len(tokens), "total_tokens": 1},
        }


async def _completion_chunks(
    state: WorkloadState, tokens: list[str], ident: str, created: int, model: str
) -> AsyncIterator[str]:
    head = (
        f'data: {{"id":"{ident}","object":"chat.completion.chunk","created":{created},'
        f'"model":{json.dumps(model)},"choices":[{{"index":0,"delta":'
    )
    yield head + '{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    gated = True
    for index, token in enumerate(tokens):
        gated = await state.pace(index, gated)
        yield head + f'{{"content":{json.dumps(token)}}},"finish_reason":null}}]}}\n\n'
    yield head + '{},"finish_reason":"stop"}]}\n\n'
    yield "data: [DONE]\n\n"


def _event_stream(chunks: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def _ollama_routes(app: FastAPI, state: WorkloadState) -> None:
    @app.get("/api/tags")
    async def tags() -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": f"{state.model}:latest",
                    "model": f"{state.model}:latest",
                    "modified_at": "2026-11-01T00:00:00Z",
                    "size": 4_661_224_676,
                    "digest": hashlib.sha256(state.model.encode()).hexdigest(),
                    "details": {
                        "format": "gguf",
                        "family": "llama",
                        "families": ["llama"],
                        "parameter_size": "8.0B",
                        "quantization_level": "Q4_0",
                    },
                }
            ]
        }

    @app.post("/api/chat", response_model=None)
    async def chat(request: Request) -> Response | dict[str, Any]:
        body = await _json_body(request)
        model = str(body.get("model") or state.model)
        options = body.get("options")
        if not isinstance(options, dict):
            options = {}
        tokens = state.reply(body.get("messages"), options.get("num_predict"))
        if body.get("stream", True):
            return StreamingResponse(
                _ollama_lines(state, tokens, model), media_type="application/x-ndjson"
            )
        return _ollama_message(model, "".join(tokens), done=True, count=len(tokens))


def _ollama_message(model: str, content: str, *, done: bool, count: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = {
        "model": model,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "message": {"role": "assistant", "content": content},
        "done": done,
    }
    if done:
        message.update(done_reason="stop", eval_count=count, prompt_eval_count=1)
    return message


async def _ollama_lines(state: WorkloadState, tokens: list[str], model: str) -> AsyncIterator[str]:
    gated = True
    for index, token in enumerate(tokens):
        gated = await state.pace(index, gated)
        yield json.dumps(_ollama_message(model, token, done=False)) + "\n"
    yield json.dumps(_ollama_message(model, "", done=True, count=len(tokens))) + "\n"


def _utility_routes(app: FastAPI, state: WorkloadState) -> None:
    @app.get("/bytes/{size}", response_model=None)
    async def download(size: int) -> Response:
        if not 0 <= size <= MAX_DOWNLOAD_BYTES:
            return JSONResponse({"error": "size out of range"}, status_code=400)
        return StreamingResponse(
            _async(pattern_chunks(size)),
            media_type="application/octet-stream",
            headers={"Content-Length": str(size)},
        )

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        digest, total = hashlib.sha256(), 0
        async for chunk in request.stream():
            digest.update(chunk)
            total += len(chunk)
        return {"bytes": total, "sha256": digest.hexdigest()}

    @app.get("/events")
    async def events(count: int = 10, interval: float = 1.0) -> StreamingResponse:
        return _event_stream(_ticks(state, count, interval))

    @app.get("/sleep/{seconds}")
    async def sleep(seconds: float, request: Request) -> dict[str, float]:
        """Answer after `seconds`, or stop early when the caller hangs up (as vLLM aborts)."""
        state.open_requests += 1
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not await request.is_disconnected():
                await asyncio.sleep(min(0.01, seconds))
        finally:
            state.open_requests -= 1
        return {"slept": seconds}

    @app.get("/login")
    async def login(request: Request) -> RedirectResponse:
        root = request.scope.get("root_path", "")
        response = RedirectResponse(f"{root}/v1/models", status_code=303)
        response.set_cookie("session", "s3ss10n", path=f"{root}/", httponly=True)
        return response

    @app.api_route(
        "/echo/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    async def echo(rest: str, request: Request) -> JSONResponse:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        described = {
            "method": request.method,
            "path": f"/{rest}",
            "query": request.url.query,
            "body_bytes": size,
        }
        return JSONResponse(described, headers={"X-Echo-Method": request.method})


async def _ticks(state: WorkloadState, count: int, interval: float) -> AsyncIterator[str]:
    state.open_requests += 1
    try:
        for index in range(count):
            if index:
                await asyncio.sleep(interval)
            yield f'data: {{"n":{index}}}\n\n'
    finally:
        state.open_requests -= 1


async def _async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def bearer_key(headers: Headers) -> str | None:
    """The key of `Authorization: Bearer <key>`, or None."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None
