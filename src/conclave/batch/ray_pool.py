"""Batch rows on a Ray cluster: actors that each keep one `Consensus` (its models loaded once).

The driver keeps the input, the output journal and the progress bar; only the rows and the
consensus factory travel. Each actor builds its `Consensus` on its own node from the factory,
so the models (embedded packs, or keys for remote providers) must be available there.

```python
with RayConsensusPool.start(partial(Consensus, config), actors=4) as pool:
    result = await pool.answer(row)
```
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conclave.batch.answering import ConsensusFactory, answer_row
from conclave.batch.rows import BatchResult, BatchRow
from conclave.errors import ConfigError
from conclave.session import Consensus

_CLOSE_TIMEOUT_S = 30.0
RAY_INSTALL_HINT = "pip install 'conclave[ray]' (or: pip install ray==2.60.0)"


class ConsensusActor:
    """A Ray actor's state: one `Consensus`, built on first use on the actor's node."""

    def __init__(self, make_consensus: ConsensusFactory, cpus: float) -> None:
        # The embedded models size their thread pool by CONCLAVE_THREADS, else by the node's
        # cores: several actors on one node would then oversubscribe it. Give each its share.
        os.environ.setdefault("CONCLAVE_THREADS", str(max(1, int(cpus))))
        self._make_consensus = make_consensus
        self._consensus: Consensus | None = None

    async def node(self) -> str:
        """The host the actor runs on (also: the actor is up)."""
        return socket.gethostname()

    async def answer(self, row: BatchRow) -> BatchResult:
        if self._consensus is None:
            self._consensus = self._make_consensus()
        return await answer_row(self._consensus, row)

    async def close(self) -> None:
        if self._consensus is not None:
            await self._consensus.aclose()
            self._consensus = None


@dataclass
class RayConsensusPool:
    """Actors on a Ray cluster; `answer(row)` sends a row to the least busy one."""

    actors: list[Any]
    """Ray actor handles (untyped: Ray's handles are dynamic)."""
    rows_per_actor: int
    nodes: list[str]
    started_ray: bool
    _in_flight: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._in_flight = [0] * len(self.actors)

    @property
    def capacity(self) -> int:
        """How many rows may be in flight at once over the whole pool."""
        return len(self.actors) * self.rows_per_actor

    @classmethod
    @contextmanager
    def start(
        cls,
        make_consensus: ConsensusFactory,
        *,
        address: str | None = None,
        actors: int | None = None,
        actor_cpus: float = 1.0,
        rows_per_actor: int = 4,
    ) -> Iterator[RayConsensusPool]:
        """Join (or start) Ray, start the actors, and stop them (and Ray, if started here)
        when the block ends."""
        ray = _import_ray()
        started_ray = not ray.is_initialized()
        if started_ray:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=True)
            except ConnectionError as exc:
                raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}") from None
        handles: list[Any] = []
        try:
            count = actors or max(1, int(ray.cluster_resources().get("CPU", 1) // actor_cpus))
            actor_class = ray.remote(num_cpus=actor_cpus, max_concurrency=rows_per_actor)(
                ConsensusActor
            )
            handles = [actor_class.remote(make_consensus, actor_cpus) for _ in range(count)]
            nodes = ray.get([handle.node.remote() for handle in handles])
            yield cls(
                actors=handles,
                rows_per_actor=rows_per_actor,
                nodes=list(nodes),
                started_ray=started_ray,
            )
        finally:
            # Best effort: an actor that died cannot close, and must not hide why the run ended.
            closing = [handle.close.remote() for handle in handles]
            if closing:
                ray.wait(closing, num_returns=len(closing), timeout=_CLOSE_TIMEOUT_S)
            for handle in handles:
                ray.kill(handle)
            if started_ray:
                ray.shutdown()

    async def answer(self, row: BatchRow) -> BatchResult:
        """The row's result from the actor with the fewest rows in flight."""
        index = min(range(len(self.actors)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            reference = self.actors[index].answer.remote(row)
            # A concurrent future works for local and Ray Client (ray://) references alike.
            result: BatchResult = await asyncio.wrap_future(reference.future())
            return result
        finally:
            self._in_flight[index] -= 1


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray installed: {RAY_INSTALL_HINT}") from None
    return ray
