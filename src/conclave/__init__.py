"""conclave: Consensus Learning over LLMs.

A panel of models answers in parallel, an aggregator synthesises one answer, and improvement
rounds hand that consensus back to the panel to refine.
"""

from conclave.config import AggregatorSpec, ConsensusConfig, ModelSpec, load_config, parse_config
from conclave.consensus.engine import ConsensusEngine
from conclave.consensus.events import ConsensusEvent
from conclave.consensus.panel import Member, Panel
from conclave.consensus.transcript import CallRecord, RoundRecord, Transcript
from conclave.errors import (
    ConclaveError,
    ConfigError,
    ConsensusError,
    MissingCredentialsError,
    ModelPackMissingError,
    ProviderError,
)
from conclave.presets import embedded_config
from conclave.session import Consensus
from conclave.settings import Settings
from conclave.types import Completion, Message, SamplingOptions, Usage

__all__ = [
    "AggregatorSpec",
    "CallRecord",
    "Completion",
    "ConclaveError",
    "ConfigError",
    "Consensus",
    "ConsensusConfig",
    "ConsensusEngine",
    "ConsensusError",
    "ConsensusEvent",
    "Member",
    "Message",
    "MissingCredentialsError",
    "ModelPackMissingError",
    "ModelSpec",
    "Panel",
    "ProviderError",
    "RoundRecord",
    "SamplingOptions",
    "Settings",
    "Transcript",
    "Usage",
    "embedded_config",
    "load_config",
    "parse_config",
]
