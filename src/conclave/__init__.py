"""conclave: Consensus Learning over LLMs.

A panel of models answers in parallel, an aggregator synthesises one answer, and improvement
rounds hand that consensus back to the panel to refine.

```python
from conclave import Consensus, load_config

async with Consensus(load_config("panel.json")) as consensus:
    transcript = await consensus.ask("Why is the sky blue?")
```

What is exported here is the public API: `Consensus`, its config and how to load one, the
events a run yields, the transcript it returns, the error tree, and the provider interface (to
serve models from elsewhere). The fakes to test code that uses conclave are in
`conclave.testing`. The engine's own parts (`conclave.consensus.*`) are internal.
"""

import conclave.documents  # noqa: F401  (registers the grounding steps of a `documents` block)
from conclave.config import (
    AggregatorSpec,
    ConsensusConfig,
    DocumentsOptions,
    ModelSpec,
    ProviderKind,
    load_config,
    parse_config,
)
from conclave.consensus.events import (
    AggregateDelta,
    AggregateFinished,
    AggregateRestarted,
    AnswerChecked,
    CombinerFellBack,
    ConsensusDone,
    ConsensusEvent,
    ConversationPrepared,
    MemberAnswered,
    MemberFailed,
    RoundFinished,
    RoundStarted,
    RunStarted,
    StepProgress,
)
from conclave.consensus.transcript import CallRecord, RoundRecord, Transcript
from conclave.errors import (
    AttestationError,
    AttestationRequestError,
    AttestationVerificationError,
    ConclaveError,
    ConfigError,
    ConsensusError,
    InsufficientCreditsError,
    LauncherError,
    MissingCredentialsError,
    ModelPackMissingError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitedError,
    ReceiptFormatError,
    TrustAnchorError,
)
from conclave.presets import embedded_config
from conclave.providers.base import Provider
from conclave.providers.registry import ProviderRegistry
from conclave.session import Consensus
from conclave.settings import Settings
from conclave.types import (
    Completion,
    Message,
    ModelInfo,
    SamplingOptions,
    StreamItem,
    TextDelta,
    Usage,
)

__all__ = [
    "AggregateDelta",
    "AggregateFinished",
    "AggregateRestarted",
    "AggregatorSpec",
    "AnswerChecked",
    "AttestationError",
    "AttestationRequestError",
    "AttestationVerificationError",
    "CallRecord",
    "CombinerFellBack",
    "Completion",
    "ConclaveError",
    "ConfigError",
    "Consensus",
    "ConsensusConfig",
    "ConsensusDone",
    "ConsensusError",
    "ConsensusEvent",
    "ConversationPrepared",
    "DocumentsOptions",
    "InsufficientCreditsError",
    "LauncherError",
    "MemberAnswered",
    "MemberFailed",
    "Message",
    "MissingCredentialsError",
    "ModelInfo",
    "ModelPackMissingError",
    "ModelSpec",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderKind",
    "ProviderRegistry",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "RateLimitedError",
    "ReceiptFormatError",
    "RoundFinished",
    "RoundRecord",
    "RoundStarted",
    "RunStarted",
    "SamplingOptions",
    "Settings",
    "StepProgress",
    "StreamItem",
    "TextDelta",
    "Transcript",
    "TrustAnchorError",
    "Usage",
    "embedded_config",
    "load_config",
    "parse_config",
]
