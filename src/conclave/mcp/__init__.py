"""conclave as an MCP server: the consensus as tools that any MCP client (an IDE, a desktop
assistant, an agent framework) can call, through the official `mcp` SDK.

- `ConsensusTools`: the tools' work (ask, list_presets, list_models, get_run) over `Consensus`
  and the run store;
- `build_mcp_server()`: an SDK `MCPServer` exposing them;
- `serve_mcp()`: `conclave mcp`, over stdio or streamable HTTP behind the service's API keys.

This package is `conclave.mcp`; the SDK stays the top-level `mcp` (imports are absolute).
"""

from conclave.mcp.results import AskResult, EmbeddedModel, ModelList, PanelModel, PresetList
from conclave.mcp.server import MCP_PATH, build_mcp_server, serve_mcp
from conclave.mcp.tools import ConsensusTools

__all__ = [
    "MCP_PATH",
    "AskResult",
    "ConsensusTools",
    "EmbeddedModel",
    "ModelList",
    "PanelModel",
    "PresetList",
    "build_mcp_server",
    "serve_mcp",
]
