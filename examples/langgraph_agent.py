"""A LangGraph agent using sqlgate's tools through langchain-mcp-adapters.

langchain-mcp-adapters 0.3.2 requires mcp<2 and sqlgate requires mcp>=2.3, so this script runs
in its own environment (``pip install -r examples/requirements.txt``) and starts sqlgate as a
separate process over stdio. The server is whatever ``SQLGATE_COMMAND`` names (default:
``sqlgate`` on PATH); ``DATABASE_URL`` and ``SQLGATE_*`` variables are passed on to it.

Without ``SQLGATE_AGENT_MODEL`` the "model" is a scripted fake that first runs
``SQLGATE_AGENT_QUERY`` and then ``SQLGATE_AGENT_DENIED_QUERY`` (which sqlgate refuses), so the
script runs in CI without an LLM. With ``SQLGATE_AGENT_MODEL=provider:model`` (and that
provider's LangChain package and key installed) a real model answers ``SQLGATE_AGENT_QUESTION``.

Prints one JSON line per message (tool results with their status, text and structured
content) so a test, or you, can see what reached the agent.
"""

from __future__ import annotations

import asyncio
import json
import os
import warnings
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools
from langgraph.prebuilt import create_react_agent


class ScriptedModel(FakeMessagesListChatModel):
    """Replays fixed AIMessages (tool calls, then an answer); agents call bind_tools(), ignored."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


def scripted_model() -> ScriptedModel:
    query = os.environ.get("SQLGATE_AGENT_QUERY", "SELECT count(*) AS n FROM customers")
    denied = os.environ.get("SQLGATE_AGENT_DENIED_QUERY", "DELETE FROM customers WHERE id = 1")

    def call(sql: str, call_id: str) -> AIMessage:
        return AIMessage(
            "", tool_calls=[{"name": "execute_query", "args": {"query": sql}, "id": call_id, "type": "tool_call"}]
        )

    return ScriptedModel(responses=[call(query, "call-1"), call(denied, "call-2"), AIMessage("Done.")])


def server_connection() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k == "DATABASE_URL" or k.startswith("SQLGATE_")}
    return {
        "transport": "stdio",
        "command": os.environ.get("SQLGATE_COMMAND", "sqlgate"),
        "args": ["serve"],
        "env": env,
    }


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


async def main() -> None:
    client = MultiServerMCPClient({"sqlgate": server_connection()})
    # One session (one sqlgate process) for the whole run; get_tools() would start one per call.
    async with client.session("sqlgate") as session:
        tools = await load_mcp_tools(session)
        model_name = os.environ.get("SQLGATE_AGENT_MODEL")
        if model_name:
            from langchain.chat_models import init_chat_model  # needs `pip install langchain`

            model: Any = init_chat_model(model_name)
            question = os.environ.get("SQLGATE_AGENT_QUESTION", "How many customers are there?")
        else:
            model, question = scripted_model(), "How many customers are there?"
        with warnings.catch_warnings():
            # Deprecated in favour of langchain.agents.create_agent, which needs the `langchain` package.
            warnings.simplefilter("ignore")
            agent = create_react_agent(model, tools)
        out = await agent.ainvoke({"messages": [{"role": "user", "content": question}]})
    print(json.dumps({"tools": sorted(t.name for t in tools)}))
    for message in out["messages"]:
        line: dict[str, Any] = {"type": type(message).__name__, "text": text_of(message.content)}
        if isinstance(message, ToolMessage):
            line["status"] = message.status
            line["tool_call_id"] = message.tool_call_id
            artifact = message.artifact or {}
            line["structured_content"] = artifact.get("structured_content") if isinstance(artifact, dict) else None
        print(json.dumps(line, default=str))


if __name__ == "__main__":
    asyncio.run(main())
