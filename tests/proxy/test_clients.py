"""The real `openai` and `ollama` libraries, pointed at a rental's connect URL.

Streams run in lockstep with the workload (`WorkloadState.gate`): each token after the first is
produced only once the client has received the one before, so a proxy that buffered even two
tokens would stall the stream and count a gate miss. That proves token-by-token delivery
without measuring time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import ollama
import openai
import pytest

from providers.simulators.workload import WorkloadState
from tests.proxy.conftest import Broker

PROMPT = [{"role": "user", "content": "tell me a story"}]
REPLY = "Hello from {provider}! You said: tell me a story"


@pytest.fixture
def lockstep() -> Iterator[list[WorkloadState]]:
    """Workloads put in lockstep by a test; released again afterwards."""
    gated: list[WorkloadState] = []
    yield gated
    for state in gated:
        state.gate = None


def gate(workload: WorkloadState, gated: list[WorkloadState]) -> threading.Semaphore:
    workload.gate, workload.gate_misses = threading.Semaphore(0), 0
    gated.append(workload)
    return workload.gate


@pytest.mark.parametrize("provider", ["empiriolabs", "aivory"])
def test_openai_sync_answers_and_streams_token_by_token(
    broker: Broker, provider: str, lockstep: list[WorkloadState]
) -> None:
    rental = broker.rent(provider)
    client = openai.OpenAI(
        base_url=broker.connect_url(rental["id"]) + "v1", api_key=rental["rental_key"]
    )
    whole = client.chat.completions.create(model="llama3", messages=PROMPT)
    models = [model.id for model in client.models.list()]

    workload = broker.workload(provider)
    release = gate(workload, lockstep)
    tokens: list[str] = []
    for chunk in client.chat.completions.create(model="llama3", messages=PROMPT, stream=True):
        content = chunk.choices[0].delta.content if chunk.choices else None
        if content:
            tokens.append(content)
            release.release()

    assert whole.choices[0].message.content == REPLY.format(provider=provider)
    assert models == ["llama3"]
    assert "".join(tokens) == REPLY.format(provider=provider)
    assert len(tokens) == len(REPLY.split())  # one chunk per token
    assert workload.gate_misses == 0


def test_openai_async_answers_and_streams_token_by_token(
    broker: Broker, lockstep: list[WorkloadState]
) -> None:
    rental = broker.rent("fluence")
    workload = broker.workload("fluence")

    async def converse() -> tuple[str | None, list[str]]:
        client = openai.AsyncOpenAI(
            base_url=broker.connect_url(rental["id"]) + "v1", api_key=rental["rental_key"]
        )
        async with client:
            whole = await client.chat.completions.create(model="llama3", messages=PROMPT)
            release = gate(workload, lockstep)
            tokens: list[str] = []
            stream = await client.chat.completions.create(
                model="llama3", messages=PROMPT, stream=True
            )
            async for chunk in stream:
                content = chunk.choices[0].delta.content if chunk.choices else None
                if content:
                    tokens.append(content)
                    release.release()
            return whole.choices[0].message.content, tokens

    whole, tokens = asyncio.run(converse())

    assert whole == REPLY.format(provider="fluence")
    assert "".join(tokens) == whole
    assert len(tokens) == len(REPLY.split())
    assert workload.gate_misses == 0


def test_ollama_chats_streams_and_lists_models(
    broker: Broker, lockstep: list[WorkloadState]
) -> None:
    rental = broker.rent("computegpu")
    client = ollama.Client(
        host=broker.connect_url(rental["id"]),
        headers={"Authorization": f"Bearer {rental['rental_key']}"},
    )
    listed = client.list()
    whole = client.chat(model="llama3", messages=PROMPT, stream=False)

    workload = broker.workload("computegpu")
    release = gate(workload, lockstep)
    parts: list[str] = []
    done = False
    for part in client.chat(model="llama3", messages=PROMPT, stream=True):
        if part.message.content:
            parts.append(part.message.content)
            release.release()
        done = done or bool(part.done)

    assert [model.model for model in listed.models] == ["llama3:latest"]
    assert whole.message.content == REPLY.format(provider="computegpu") and whole.done
    assert "".join(parts) == whole.message.content
    assert len(parts) == len(REPLY.split()) and done
    assert workload.gate_misses == 0


def test_ollama_async_client_with_the_account_key(broker: Broker) -> None:
    rental = broker.rent("empiriolabs")

    async def converse() -> list[str]:
        client = ollama.AsyncClient(host=broker.connect_url(rental["id"]), headers=broker.headers)
        stream = await client.chat(model="llama3", messages=PROMPT, stream=True)
        return [part.message.content async for part in stream if part.message.content]

    assert "".join(asyncio.run(converse())) == REPLY.format(provider="empiriolabs")
