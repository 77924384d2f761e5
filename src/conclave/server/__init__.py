"""conclave's HTTP service: Flare's chat route, an OpenAI-compatible `/v1`, the consensus
event stream, health and Prometheus metrics. Build an app with `create_app`; `conclave serve`
runs one under uvicorn."""

from conclave.server.app import create_app
from conclave.server.service_settings import ServerSettings
from conclave.server.transcript_store import MemoryTranscriptStore, TranscriptStore

__all__ = ["MemoryTranscriptStore", "ServerSettings", "TranscriptStore", "create_app"]
