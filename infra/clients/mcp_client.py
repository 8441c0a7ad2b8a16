"""An MCP client for the tests, built on the official MCP Python SDK (PyPI `mcp`): connects
to URL over Streamable HTTP with `Authorization: Bearer KEY` (no header when KEY is empty),
in the SDK's default mode (it negotiates the protocol version itself), runs the steps read
as JSON from stdin and prints what each got as one JSON object:

  steps:  [{"list_tools": true}, {"call": "create_job", "arguments": {...}}, ...]
  output: {"server": {"name", "version", "protocol", "instructions"},
           "steps": [{"tools": [...]} | {"is_error", "structured", "text"} | {"exception"}],
           "http_statuses": [every HTTP status the server answered, in order]}
  or, when the connection itself fails: {"connect_error": "...", "http_statuses": [...]}

Usage: mcp_client.py URL KEY [MODE] < steps.json   (MODE: the SDK's `mode`, default "auto";
"legacy" forces the initialize handshake of the earlier protocol versions)"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def step(client, spec):
    if spec.get("list_tools"):
        return {"tools": [dump(t) for t in (await client.list_tools()).tools]}
    result = await client.call_tool(spec["call"], spec.get("arguments", {}))
    text = "".join(c.text for c in result.content if getattr(c, "type", None) == "text")
    return {"is_error": bool(result.is_error), "structured": result.structured_content, "text": text}


async def main(url, key, mode, steps):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    out, statuses = [], []

    async def record(response):
        statuses.append(response.status_code)

    try:
        async with httpx2.AsyncClient(headers=headers, timeout=30,
                                      event_hooks={"response": [record]}) as http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                info = client.server_info
                server = {"name": info.name if info else None,
                          "version": info.version if info else None,
                          "protocol": client.protocol_version,
                          "instructions": client.instructions}
                for spec in steps:
                    try:
                        out.append(await step(client, spec))
                    except Exception as e:  # noqa: BLE001 - reported to the test
                        out.append({"exception": repr(e)})
    except BaseException as e:  # noqa: BLE001 - an ExceptionGroup from the transport, too
        return {"connect_error": repr(e), "steps": out, "http_statuses": statuses}
    return {"server": server, "steps": out, "http_statuses": statuses}


if __name__ == "__main__":
    mode = sys.argv[3] if len(sys.argv) > 3 else "auto"
    result = asyncio.run(main(sys.argv[1], sys.argv[2], mode, json.load(sys.stdin)))
    print(json.dumps(result))
