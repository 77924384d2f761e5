"""How many threads an embedded call runs on: its share of the budget, if the cores are free.

llama.cpp's OpenMP workers spin while they wait at a barrier (libgomp's default, which conclave
keeps: waiting passively made a lone call on a quiet 2-core machine 1.6x slower). Spinning is
only safe while each worker has a core of its own. When another process takes one of the cores,
a descheduled worker leaves its partner spinning at every barrier, and 2 threads ran 8x slower
than 1 (README, "Embedded speed"). A call on one thread has no barriers and nothing to spin on.

So a call gets its equal share of the budget (`ThreadBudget`: two calls at once, one thread
each) only while the cores it would use are otherwise free, and falls back to as many threads as
fit beside what other processes use. `CpuLoad` measures that cheaply: the CPU time /proc/stat
counts as busy, minus this process's own, over the last quarter second or so. Processes of a
higher niceness than ours are not counted: the kernel gives our threads their cores back almost
at once. The count is decided again every few tokens, so load that arrives or leaves mid-call
is followed; `threads_that_fit` keeps a margin between raising and lowering (hysteresis), so
the count does not flap around the threshold.

Where /proc/stat cannot be read (not Linux), the share is used as it is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RAISE_MARGIN = 0.15
"""More threads only if other processes leave all but this much of their cores free."""

KEEP_MARGIN = 0.35
"""Threads already running keep going until other processes take more than this much of their
cores (between the two margins the count stays as it is)."""

WINDOW_S = 0.25
"""The shortest span a CPU reading averages over (/proc/stat counts in 10 ms ticks)."""

STALE_S = 5.0
"""A reading older than this says little about now: a call starting after such a pause reads
afresh, over FRESH_WINDOW_S."""

FRESH_WINDOW_S = 0.1
"""The shortest window a choice waits for when it has no recent one (a call's first choice
after a pause, or right after the first reading)."""


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one moment, from /proc/stat and this process."""

    at: float
    """time.monotonic() when read."""
    cores: int
    """CPUs listed in /proc/stat."""
    competing_s: float
    """CPU seconds all processes that compete with ours have used, ours included."""
    own_s: float
    """CPU seconds this process has used (all its threads)."""


def busy_cores_of_others(before: CpuSample, after: CpuSample) -> float:
    """Cores other processes kept busy between two samples, on average."""
    wall = after.at - before.at
    if wall <= 0:
        return 0.0
    others = (after.competing_s - before.competing_s) - (after.own_s - before.own_s)
    return max(0.0, others / wall)


def threads_that_fit(share: int, free_cores: float | None, current: int) -> int:
    """Threads for one call: its `share`, lowered to what fits on `free_cores` (cores that
    other processes leave free; None when unknown, which keeps the share).

    `current` is what the call runs on now (0 before it starts): keeping a count needs its
    cores free up to KEEP_MARGIN, raising it needs them free up to RAISE_MARGIN.
    """
    if free_cores is None or share <= 1:
        return max(1, share)
    for threads in range(share, 1, -1):
        margin = KEEP_MARGIN if threads <= current else RAISE_MARGIN
        if free_cores >= threads - margin:
            return threads
    return 1


def read_proc_stat(own_niceness: int) -> tuple[int, float] | None:
    """(cores, competing CPU seconds) from /proc/stat; None where it cannot be read."""
    try:
        text = Path("/proc/stat").read_text(encoding="ascii")
        ticks_per_s = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    return parse_proc_stat(text, own_niceness, ticks_per_s)


def parse_proc_stat(text: str, own_niceness: int, ticks_per_s: int) -> tuple[int, float] | None:
    """(cores, competing CPU seconds) from the text of /proc/stat; None if it is not that.

    The `nice` column (processes above niceness 0) counts only when this process is niced too:
    processes nicer than ours barely hold a core against it.
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("cpu "):
        return None
    try:
        fields = [int(value) for value in lines[0].split()[1:9]]
    except ValueError:
        return None
    if len(fields) < 8:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    competing = user + system + irq + softirq + steal + (nice if own_niceness > 0 else 0)
    cores = sum(1 for line in lines[1:] if line.startswith("cpu"))
    return max(1, cores), competing / ticks_per_s


def _own_niceness() -> int:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return 0


class CpuLoad:
    """How many cores other processes leave free, measured over the latest window.

    Thread-safe; each `free_cores()` call costs a clock read, and a file read once a window.
    """

    def __init__(
        self,
        *,
        read: Callable[[int], tuple[int, float] | None] = read_proc_stat,
        clock: Callable[[], float] = time.monotonic,
        own_cpu: Callable[[], float] = time.process_time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """The callables default to the real ones; tests pass their own."""
        self._read = read
        self._clock = clock
        self._own_cpu = own_cpu
        self._sleep = sleep
        self._niceness = _own_niceness()
        self._lock = threading.Lock()
        self._last: CpuSample | None = None
        self._free: float | None = None

    def sample(self) -> CpuSample | None:
        """The cumulative counters now (None where /proc/stat cannot be read)."""
        found = self._read(self._niceness)
        if found is None:
            return None
        cores, competing = found
        return CpuSample(self._clock(), cores, competing, self._own_cpu())

    def start(self) -> None:
        """Take the first reading, so the first call's choice has a window behind it."""
        with self._lock:
            if self._last is None:
                self._last = self.sample()

    def free_cores(self) -> float | None:
        """Cores not used by other processes over the latest window of WINDOW_S or more;
        None where that cannot be measured."""
        with self._lock:
            now = self._clock()
            last = self._last
            if last is not None and now - last.at < WINDOW_S and self._free is not None:
                return self._free
            if last is None or now - last.at > STALE_S:
                last = self.sample()
                if last is None:
                    return None
            waited = self._clock() - last.at
            if waited < FRESH_WINDOW_S:
                self._sleep(FRESH_WINDOW_S - waited)
            current = self.sample()
            if current is None:
                return None
            self._free = current.cores - busy_cores_of_others(last, current)
            self._last = current
            return self._free


class ThreadBudget:
    """Shares `total` threads equally between the calls running now, each share lowered to
    what fits beside other processes' load (`load`; None keeps the shares as they are)."""

    def __init__(self, total: int, load: CpuLoad | None = None) -> None:
        self.total = total
        self.load = load
        self._running = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self._running += 1

    def leave(self) -> None:
        with self._lock:
            self._running -= 1

    def share(self, current: int = 0) -> int:
        """Threads for one running call that now runs on `current` (0 before it starts)."""
        running = max(1, self._running)
        share = max(1, self.total // running)
        if self.load is None or share == 1:
            return share
        free = self.load.free_cores()
        return threads_that_fit(share, None if free is None else free / running, current)
