"""The MCP tools through the official SDK's client, connected in-process to the server
`conclave mcp` builds, with the shipped fakes as the panel (no network, no weights)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr

from conclave.config import ConsensusConfig
from conclave.errors import ConfigError, ProviderHTTPError
from conclave.mcp import ConsensusTools, build_mcp_server, serve_mcp
from conclave.mcp.server import http_app
from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeModel, FakeProvider, FunctionModel
from conclave.server.service_settings import ServerSettings
from conclave.settings import Settings
from conclave.store import StoreSettings, open_run_store

Fakes = dict[str, FakeModel | FunctionModel]
SERVICE_KEY = "mcp-service-key-0123"


def panel_config(name: str = "panel", **changes: object) -> ConsensusConfig:
    data: dict[str, object] = {
        "name": name,
        "models": [{"id": member} for member in ("a", "b", "c")],
        "aggregator": [{"model": {"id": "agg"}}],
        "iterations": 0,
    }
    data.update(changes)
    return ConsensusConfig.model_validate(data)


def paris_fakes() -> Fakes:
    return {
        "a": FakeModel(default="Paris"),
        "b": FakeModel(default="Paris"),
        "c": FakeModel(default="Lyon"),
        "agg": FakeModel(default="The capital of France is Paris."),
    }


Connect = Callable[..., AbstractAsyncContextManager[Client]]


def make_tools(
    home: Path,
    *,
    fakes: Fakes | None = None,
    presets: Sequence[ConsensusConfig] = (),
    over_http: bool = False,
    limits: ServerSettings | None = None,
) -> ConsensusTools:
    """The tools over `presets` (one panel of fakes by default), runs kept under `home`."""
    registry = ProviderRegistry(
        Settings(_env_file=None, home=home),
        overrides={"openrouter": FakeProvider(fakes if fakes is not None else paris_fakes())},
    )
    limits = limits or ServerSettings(_env_file=None)
    return ConsensusTools(
        [(config.name, config) for config in presets or [panel_config()]],
        registry=registry,
        store=open_run_store(home=home, settings=StoreSettings(), source="mcp"),
        limits=limits,
        allow_config_files=not over_http,
        extra_secrets=[key.get_secret_value() for key in limits.api_keys],
    )


@pytest.fixture
def connect(tmp_path: Path) -> Connect:
    """`connect(fakes=..., presets=..., over_http=..., limits=...)`: an SDK client session on
    a server of those presets, its runs kept in a store of the test's own."""

    @asynccontextmanager
    async def session(**options: Any) -> AsyncIterator[Client]:
        tools = make_tools(tmp_path / "home", **options)
        try:
            async with Client(build_mcp_server(tools, tools.redact)) as client:
                yield client
        finally:
            await tools.aclose()

    return session


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def test_a_client_lists_the_four_tools_with_their_schemas(connect: Connect) -> None:
    async with connect() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == {"ask", "list_presets", "list_models", "get_run"}
    ask = tools["ask"]
    assert ask.input_schema["required"] == ["prompt"]
    assert set(ask.input_schema["properties"]) == {
        "prompt",
        "system",
        "preset",
        "config",
        "strategy",
    }
    assert ask.output_schema is not None
    assert {"answer", "agreement", "confidence", "run_id"} <= set(ask.output_schema["properties"])
    assert tools["get_run"].annotations is not None
    assert tools["get_run"].annotations.read_only_hint is True


async def test_ask_returns_the_consensus_with_agreement_and_a_run_get_run_reads(
    connect: Connect,
) -> None:
    async with connect() as client:
        asked = structured(await client.call_tool("ask", {"prompt": "Capital of France?"}))
        run = structured(await client.call_tool("get_run", {"run_id": asked["run_id"]}))

    assert asked["answer"] == "The capital of France is Paris."
    assert asked["preset"] == "panel"
    assert asked["agreement"] == pytest.approx(2 / 3)
    assert 0.0 < asked["confidence"] <= 1.0
    assert (asked["calls"], asked["failed_calls"], asked["kept"]) == (4, 0, True)
    assert run["id"] == asked["run_id"]
    assert run["answer"] == asked["answer"]
    assert [call["model"] for call in run["rounds"][0]["responses"]] == ["a", "b", "c"]


async def test_the_text_content_is_the_same_result_for_clients_that_read_only_text(
    connect: Connect,
) -> None:
    async with connect() as client:
        result = await client.call_tool("ask", {"prompt": "Capital of France?"})

    assert json.loads(text_of(result)) == structured(result)


async def test_a_system_message_reaches_every_member(connect: Connect) -> None:
    fakes = paris_fakes()
    async with connect(fakes=fakes) as client:
        structured(await client.call_tool("ask", {"prompt": "Capital?", "system": "Be terse."}))

    for member in ("a", "b", "c"):
        sent = fakes[member].history[0].messages
        assert (sent[0].role, sent[0].content) == ("system", "Be terse.")


async def test_a_strategy_runs_the_preset_another_way(connect: Connect) -> None:
    fakes = paris_fakes()
    async with connect(fakes=fakes) as client:
        voted = structured(
            await client.call_tool("ask", {"prompt": "Capital?", "strategy": "vote"})
        )

    assert (voted["strategy"], voted["decided_by"]) == ("vote", "vote")
    assert voted["answer"] == "Paris"
    assert voted["preset"] == "panel:vote"
    assert fakes["agg"].history == []  # a vote needs no aggregator


async def test_presets_are_listed_default_first_and_chosen_by_name(connect: Connect) -> None:
    second = panel_config("second", models=[{"id": "b"}, {"id": "c"}])
    async with connect(presets=[panel_config(), second]) as client:
        listed = structured(await client.call_tool("list_presets", {}))
        asked = structured(
            await client.call_tool("ask", {"prompt": "Capital?", "preset": "second"})
        )

    assert [(p["name"], p["default"]) for p in listed["presets"]] == [
        ("panel", True),
        ("second", False),
    ]
    assert listed["presets"][1]["members"] == ["b", "c"]
    assert "vote" in listed["strategies"]
    assert (asked["preset"], asked["calls"]) == ("second", 3)


async def test_list_models_names_the_presets_models_and_the_embedded_packs(
    connect: Connect,
) -> None:
    async with connect() as client:
        models = structured(await client.call_tool("list_models", {}))

    assert [(m["id"], m["presets"]) for m in models["panel_models"]] == [
        ("a", ["panel"]),
        ("b", ["panel"]),
        ("c", ["panel"]),
        ("agg", ["panel"]),
    ]
    assert {m["id"] for m in models["embedded"]} == {
        "local:smollm2-135m",
        "local:qwen2.5-0.5b",
        "local:qwen2.5-1.5b",
    }


async def test_a_config_file_runs_over_stdio(connect: Connect, tmp_path: Path) -> None:
    path = tmp_path / "duo.json"
    path.write_text(
        json.dumps(
            {
                "models": [{"id": "a"}, {"id": "b"}],
                "aggregator": [{"model": {"id": "agg"}}],
                "iterations": 0,
            }
        ),
        encoding="utf-8",
    )
    async with connect() as client:
        asked = structured(
            await client.call_tool("ask", {"prompt": "Capital?", "config": str(path)})
        )

    assert (asked["preset"], asked["calls"]) == ("duo", 3)


# --- errors: tool errors that say what to do; the server goes on ------------------------------


async def tool_error(client: Client, tool: str, arguments: dict[str, object]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result
    return text_of(result)


async def test_an_unknown_preset_names_the_presets(connect: Connect) -> None:
    async with connect() as client:
        message = await tool_error(client, "ask", {"prompt": "Hi", "preset": "nope"})
        still = structured(await client.call_tool("ask", {"prompt": "Capital?"}))

    assert "no preset 'nope': the presets are default, panel" in message
    assert still["answer"]


async def test_arguments_that_break_the_schema_are_named_plainly(connect: Connect) -> None:
    async with connect() as client:
        no_prompt = await tool_error(client, "ask", {})
        number = await tool_error(client, "ask", {"prompt": 42})

    assert "$.prompt: Field required (found nothing)" in no_prompt
    assert "$.prompt: Input should be a valid string (found 42)" in number
    for message in (no_prompt, number):
        assert "pydantic" not in message
        assert "askArguments" not in message


async def test_an_unknown_strategy_names_the_strategies(connect: Connect) -> None:
    fakes = paris_fakes()
    async with connect(fakes=fakes) as client:
        message = await tool_error(client, "ask", {"prompt": "Hi", "strategy": "loud"})

    assert "unknown strategy 'loud'; choose one of: flare, vote, rank" in message
    assert all(not fake.history for fake in fakes.values())


async def test_a_blank_or_too_long_prompt_is_refused_before_any_model_runs(
    connect: Connect,
) -> None:
    fakes = paris_fakes()
    limits = ServerSettings(_env_file=None, max_prompt_chars=50)
    async with connect(fakes=fakes, limits=limits) as client:
        blank = await tool_error(client, "ask", {"prompt": "   "})
        long = await tool_error(client, "ask", {"prompt": "x" * 51})

    assert "the prompt is empty" in blank
    assert "prompt" in long
    assert "50" in long
    assert all(not fake.history for fake in fakes.values())


async def test_a_preset_and_a_config_together_are_refused(connect: Connect) -> None:
    async with connect() as client:
        message = await tool_error(
            client, "ask", {"prompt": "Hi", "preset": "panel", "config": "x.json"}
        )

    assert "either a preset or a config file, not both" in message


async def test_config_files_are_refused_over_http(connect: Connect, tmp_path: Path) -> None:
    path = tmp_path / "panel.json"
    path.write_text(panel_config().model_dump_json(), encoding="utf-8")
    async with connect(over_http=True) as client:
        message = await tool_error(client, "ask", {"prompt": "Hi", "config": str(path)})

    assert "takes no config files from its callers" in message
    assert "list_presets" in message


async def test_a_missing_or_broken_config_file_is_named(connect: Connect, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"models": [', encoding="utf-8")
    async with connect() as client:
        missing = await tool_error(
            client, "ask", {"prompt": "Hi", "config": str(tmp_path / "absent.json")}
        )
        unreadable = await tool_error(client, "ask", {"prompt": "Hi", "config": str(broken)})

    assert "absent.json" in missing
    assert "No such file" in missing
    assert "broken.json" in unreadable


async def test_a_failed_run_is_a_tool_error_and_is_kept_for_get_run(connect: Connect) -> None:
    def down(*_: object) -> str:
        raise ProviderHTTPError("upstream is down", status_code=503)

    fakes: Fakes = {name: FunctionModel(down) for name in ("a", "b", "c", "agg")}
    async with connect(fakes=fakes) as client:
        message = await tool_error(client, "ask", {"prompt": "Capital?"})
        run_id = message.split("(run ")[1].split(" is kept")[0]
        run = structured(await client.call_tool("get_run", {"run_id": run_id}))

    assert "no consensus" in message
    assert all(call["error"] for call in run["rounds"][0]["responses"])


async def test_an_unknown_run_id_says_where_ids_come_from(connect: Connect) -> None:
    async with connect() as client:
        message = await tool_error(client, "get_run", {"run_id": "0123abcd"})

    assert "no run '0123abcd' is kept" in message


async def test_an_unexpected_failure_is_a_tool_error_with_an_id_and_the_server_goes_on(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: ConsensusTools) -> None:
        raise RuntimeError(f"bug holding {SERVICE_KEY}")

    monkeypatch.setattr(ConsensusTools, "list_presets", broken)
    limits = ServerSettings(_env_file=None, api_keys=(SecretStr(SERVICE_KEY),))
    async with connect(limits=limits) as client:
        message = await tool_error(client, "list_presets", {})
        still = structured(await client.call_tool("list_models", {}))

    assert "internal error" in message
    assert SERVICE_KEY not in message
    assert SERVICE_KEY not in caplog.text
    assert message.split("internal error ")[1].split(":")[0] in caplog.text
    assert still["panel_models"]


async def test_secrets_never_reach_an_answer(connect: Connect) -> None:
    fakes = paris_fakes()
    fakes["agg"] = FakeModel(default=f"Paris (and the key is {SERVICE_KEY})")
    limits = ServerSettings(_env_file=None, api_keys=(SecretStr(SERVICE_KEY),))
    async with connect(fakes=fakes, limits=limits) as client:
        asked = structured(await client.call_tool("ask", {"prompt": "Capital?"}))
        run = structured(await client.call_tool("get_run", {"run_id": asked["run_id"]}))

    assert SERVICE_KEY not in json.dumps(asked) + json.dumps(run)
    assert "[redacted]" in asked["answer"]


# --- the HTTP transport's gate: the service's rule for who may call -------------------------


async def status_through_the_gate(tmp_path: Path, settings: ServerSettings, caller: str) -> int:
    """The status a request from `caller` gets from the HTTP app (a path the MCP transport does
    not serve: 404 once past the gate)."""
    tools = make_tools(tmp_path / "home", over_http=True)
    try:
        app = http_app(
            build_mcp_server(tools, tools.redact), settings=settings, redact=tools.redact
        )
        transport = httpx2.ASGITransport(app, client=(caller, 40000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return (await http.get("/elsewhere")).status_code
    finally:
        await tools.aclose()


async def test_without_keys_only_callers_on_this_machine_pass(tmp_path: Path) -> None:
    closed = ServerSettings(_env_file=None)
    opened = ServerSettings(_env_file=None, allow_unauthenticated=True)

    assert await status_through_the_gate(tmp_path, closed, "127.0.0.1") == 404
    assert await status_through_the_gate(tmp_path, closed, "192.0.2.7") == 403
    assert await status_through_the_gate(tmp_path, opened, "192.0.2.7") == 404


async def test_with_keys_every_caller_needs_one(tmp_path: Path) -> None:
    keyed = ServerSettings(_env_file=None, api_keys=(SecretStr(SERVICE_KEY),))

    assert await status_through_the_gate(tmp_path, keyed, "127.0.0.1") == 401


def test_the_flag_opens_the_gate_as_the_variable_does(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[ServerSettings] = []

    def record(_serve: object, *arguments: object) -> None:
        settings = arguments[-1]
        assert isinstance(settings, ServerSettings)
        served.append(settings)

    monkeypatch.delenv("CONCLAVE_API_KEYS", raising=False)
    monkeypatch.delenv("CONCLAVE_ALLOW_UNAUTHENTICATED", raising=False)
    monkeypatch.setattr(anyio, "run", record)
    serve_mcp([], http=True, host="0.0.0.0", allow_unauthenticated=True)
    with pytest.raises(ConfigError, match=r"^refusing to serve on 0\.0\.0\.0 with no API keys"):
        serve_mcp([], http=True, host="0.0.0.0")

    assert [settings.allow_unauthenticated for settings in served] == [True]
