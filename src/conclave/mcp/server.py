"""`conclave mcp`: the consensus tools on an MCP server of the official SDK, over stdio (for a
client that starts the server itself) or streamable HTTP (at `/mcp`, behind the same API keys
and the same closed-by-default rule as `conclave serve`).

A tool call that fails comes back as an MCP tool error whose text says what went wrong and how
to fix it; the server keeps serving. Nothing secret reaches a result, an error or the log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError
from starlette.types import ASGIApp

from conclave.config import StrategyName, format_validation_error
from conclave.consensus.transcript import Transcript
from conclave.errors import ConclaveError, ConfigError
from conclave.mcp.results import AskResult, ModelList, PresetList
from conclave.mcp.tools import ConsensusTools
from conclave.redaction import Redactor
from conclave.server.launch import (
    install_redaction,
    load_server_settings,
    unauthenticated_refusal,
)
from conclave.server.middleware import AccessGate
from conclave.server.security import KeyChecker
from conclave.server.service_settings import ServerSettings

log = logging.getLogger("conclave.mcp")

MCP_PATH = "/mcp"
"""Where the streamable HTTP transport answers."""

INSTRUCTIONS = """\
conclave runs a panel of language models on a question and returns their consensus: the
members answer in parallel, an aggregator (or a vote) combines the answers, and improvement
rounds refine them. Call `ask` for an answer you want checked by several models; its result
says how far the members agreed and how confident the answer is. `list_presets` names the
panels on offer; `get_run` shows every call of a run."""

PromptArg = Annotated[str, Field(description="The question or instruction for the panel.")]
SystemArg = Annotated[
    str | None, Field(description="A system message sent before the prompt to every model.")
]
PresetArg = Annotated[
    str | None,
    Field(description="A preset's name from list_presets; the default preset when omitted."),
]
ConfigArg = Annotated[
    str | None,
    Field(
        description="The path of a conclave config file (Flare's input.json or conclave's "
        "superset) to run instead of a preset. Over stdio only."
    ),
]
StrategyArg = Annotated[
    StrategyName | None,
    Field(
        description="How the panel agrees: flare (an aggregator synthesises), vote, rank, "
        "sample, adaptive, or another of the `strategies` list_presets names; the preset's "
        "own when omitted."
    ),
]
RunIdArg = Annotated[str, Field(description="A run's id, as `ask` returned it.")]


class _ConclaveMCPServer(MCPServer):
    """The SDK's server, saying what is wrong with a call's arguments as conclave says it of
    a config (one line per problem: where, what, what was found), not in pydantic's terms."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                problems = format_validation_error(exc.__cause__, f"the arguments of {name}")
                raise ToolError(problems) from exc.__cause__
            raise


def build_mcp_server(tools: ConsensusTools, redact: Redactor) -> MCPServer:
    """An MCP server exposing `tools` as ask, list_presets, list_models and get_run."""
    server = _ConclaveMCPServer(name="conclave", instructions=INSTRUCTIONS, log_level="WARNING")
    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(
        title="Ask a panel of models",
        annotations=ToolAnnotations(read_only_hint=False, open_world_hint=True),
    )
    async def ask(
        prompt: PromptArg,
        system: SystemArg = None,
        preset: PresetArg = None,
        config: ConfigArg = None,
        strategy: StrategyArg = None,
    ) -> AskResult:
        """Ask a panel of language models and get their consensus answer, with how far they
        agreed (agreement), how sure the answer is (confidence) and the run's id."""
        with _tool_errors(redact):
            return await tools.ask(
                prompt, system=system, preset=preset, config=config, strategy=strategy
            )

    @server.tool(title="List the panels", annotations=reading)
    def list_presets() -> PresetList:
        """The consensus presets `ask` accepts (their members, aggregator and strategy), the
        default first, and the strategies a preset can be run with."""
        with _tool_errors(redact):
            return tools.list_presets()

    @server.tool(title="List the models", annotations=reading)
    def list_models() -> ModelList:
        """The models the presets use, and the embedded models that run on this machine
        with no key and no network (whether each is installed)."""
        with _tool_errors(redact):
            return tools.list_models()

    @server.tool(title="Show a kept run", annotations=reading)
    async def get_run(run_id: RunIdArg) -> Transcript:
        """A kept run's whole transcript: every model call of every round, what each was
        sent and answered (or why it failed), the agreement, and the answer."""
        with _tool_errors(redact):
            return await tools.get_run(run_id)

    return server


@contextmanager
def _tool_errors(redact: Redactor) -> Iterator[None]:
    """conclave's errors as tool errors with their own message; anything else as a tool
    error with an id that the log line (one line, redacted, no traceback) also carries."""
    try:
        yield
    except ConclaveError as exc:
        raise ToolError(redact(str(exc))) from None
    except Exception as exc:
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s: %s: %s", error_id, type(exc).__name__, redact(str(exc)))
        raise ToolError(f"internal error {error_id}: the server's log has the details") from None


def serve_mcp(
    config_paths: Sequence[Path],
    *,
    http: bool = False,
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_unauthenticated: bool = False,
) -> None:
    """Serve the tools until the client goes (stdio) or the process is stopped (HTTP).

    Over HTTP, an address beyond loopback with no API keys (CONCLAVE_API_KEYS) is refused
    unless `allow_unauthenticated` or CONCLAVE_ALLOW_UNAUTHENTICATED says it is meant. Raises
    ConfigError (and the other start errors of `ConsensusTools.open`) before serving."""
    settings = load_server_settings()
    if allow_unauthenticated:  # the flag says what CONCLAVE_ALLOW_UNAUTHENTICATED=1 says
        settings = settings.model_copy(update={"allow_unauthenticated": True})
    if http:
        refusal = unauthenticated_refusal(host, settings, allow_unauthenticated)
        if refusal is not None:
            raise ConfigError(refusal)
    anyio.run(_serve, config_paths, http, host, port, settings)


async def _serve(
    config_paths: Sequence[Path], http: bool, host: str, port: int, settings: ServerSettings
) -> None:
    tools = await ConsensusTools.open(config_paths, allow_config_files=not http, limits=settings)
    redact = tools.redact
    server = build_mcp_server(tools, redact)
    try:
        if http:
            await _serve_http(server, host=host, port=port, settings=settings, redact=redact)
        else:
            await server.run_stdio_async()
    finally:
        await tools.aclose()


async def _serve_http(
    server: MCPServer, *, host: str, port: int, settings: ServerSettings, redact: Redactor
) -> None:
    config = uvicorn.Config(
        http_app(server, settings=settings, redact=redact, host=host),
        host=host,
        port=port,
        log_level="info",
        server_header=False,
    )
    install_redaction(redact)
    await uvicorn.Server(config).serve()


def http_app(
    server: MCPServer, *, settings: ServerSettings, redact: Redactor, host: str = "127.0.0.1"
) -> ASGIApp:
    """The streamable HTTP transport at `MCP_PATH`, behind `conclave serve`'s access gate: 401
    without a valid bearer key when CONCLAVE_API_KEYS is set; with no keys, callers on this
    machine only, unless `settings.allow_unauthenticated`. `host` is where it will listen: on
    loopback the SDK also refuses requests whose Host or Origin is not loopback."""
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    keys = KeyChecker(key.get_secret_value() for key in settings.api_keys)
    return AccessGate(
        app,
        keys=keys,
        redact=redact,
        open_paths=(),
        allow_unauthenticated=settings.allow_unauthenticated,
    )
