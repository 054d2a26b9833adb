"""`kg mcp` as an MCP client starts it: the SDK's own stdio client runs the installed command, lists
its tools and their schemas, calls each one (a document in, followed to its end, then searched),
and sends a call that breaks a schema: a tool error, and the server still answers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import EXAMPLE
from tests.support.cli import KG, kg_env

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = {"process_knowledge", "get_pipeline_status", "search_knowledge_graph", "search_concepts",
         "get_knowledge_graph_stats"}


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


async def call(session: ClientSession, name: str, arguments: dict[str, Any]) -> dict:
    result = await session.call_tool(name, arguments)
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


async def session_run(database_url: str, data_dir: Path) -> None:
    parameters = StdioServerParameters(command=str(KG), args=["mcp"], env=kg_env(database_url, data_dir))
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == TOOLS

        # The advertised schemas are the request models' fields, types and limits.
        process = tools["process_knowledge"].input_schema
        assert set(process["required"]) == {"text", "source"}
        assert process["properties"]["text"]["type"] == "string"
        assert process["properties"]["source"]["maxLength"] == 1024
        assert {"source_type", "source_date", "options"} <= set(process["properties"])
        search = tools["search_knowledge_graph"].input_schema
        assert search["required"] == ["query"]
        assert search["properties"]["limit"] == {**search["properties"]["limit"], "type": "integer", "minimum": 1,
                                                 "maximum": 100}
        assert search["properties"]["threshold"]["maximum"] == 1.0
        assert {"search_types", "weights", "types", "sources", "date_from", "date_to"} <= set(search["properties"])
        concepts = tools["search_concepts"].input_schema
        assert concepts["required"] == ["query"] and "level" in concepts["properties"]
        assert tools["get_pipeline_status"].input_schema["required"] == ["job_id"]
        assert tools["get_knowledge_graph_stats"].input_schema.get("required", []) == []

        # A document in: its job id at once, then followed until it ends.
        accepted = await call(session, "process_knowledge", {"text": EXAMPLE.read_text(), "source": "curie.txt",
                                                             "source_date": "1903-06-25"})
        assert accepted["started"] is True and accepted["status"] == "QUEUED"
        deadline = time.monotonic() + 900  # a guard against a hang, not a speed check: loaded CI machines are slow
        while True:
            job = await call(session, "get_pipeline_status", {"job_id": accepted["job_id"]})
            if job["finished"]:
                break
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.3)
        assert job["status"] == "SUCCEEDED" and job["counts"]["triples"]["total"] > 0, job
        again = await call(session, "process_knowledge", {"text": EXAMPLE.read_text(), "source": "curie.txt",
                                                          "source_date": "1903-06-25"})
        assert (again["job_id"], again["started"]) == (accepted["job_id"], False)

        stats = await call(session, "get_knowledge_graph_stats", {})
        assert stats["documents"] == 1 and stats["triples"] > 0
        found = await call(session, "search_knowledge_graph", {"query": "Where did Marie Curie work?", "limit": 5,
                                                               "weights": {"entity": 0.5, "semantic": 0.5}})
        assert 0 < len(found["hits"]) <= 5 and all(hit["sources"] for hit in found["hits"])
        concepts_found = await call(session, "search_concepts", {"query": "science", "level": "high"})
        assert all(c["level"] == "high" for c in concepts_found["concepts"])

        # Calls that break the schema, or the model's own rules, or name nothing: tool errors.
        for name, arguments, expected in (
            ("search_knowledge_graph", {"query": "Curie", "limit": 1000}, "limit"),
            ("search_knowledge_graph", {"limit": 5}, "query"),
            ("search_knowledge_graph", {"query": "   "}, "empty"),
            ("search_knowledge_graph", {"query": "Curie", "weights": {"entity": 0, "relationship": 0,
                                                                      "semantic": 0, "concept": 0}}, "weight"),
            ("search_concepts", {"query": "science", "level": "highest"}, "level"),
            ("process_knowledge", {"source": "a.txt"}, "text"),
            ("get_pipeline_status", {"job_id": "no-such-job"}, "no-such-job"),
        ):
            result = await session.call_tool(name, arguments)
            assert result.is_error, (name, arguments, text_of(result))
            assert expected in text_of(result), (name, text_of(result))
        assert (await call(session, "get_knowledge_graph_stats", {}))["documents"] == 1  # still serving


def test_an_mcp_client_lists_the_tools_and_calls_each_one(database_url, tmp_path):
    asyncio.run(asyncio.wait_for(session_run(database_url, tmp_path / "kg-data"), timeout=1200))
