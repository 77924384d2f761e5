"""How many threads an embedded call runs on: its share of the budget, if the cores are free.

llama.cpp's OpenMP workers spin while they wait at a barrier (libgomp's default, which conclave
keeps: waiting passively made a lone call on a quiet 2-core machine 1.6x slower). Spinning is
only safe while each worker has a core of its own. When another process takes one of the cores,
a descheduled worker leaves its partner spinning at every barrier, and 2 threads ran 8x slower
than 1 (docs/embedded.md, "Threads"). A call on one thread has no barriers and nothing to spin on.

So a call gets its equal share of the budget (`ThreadBudget`: two calls at once, one thread
each) only while the cores it would use are otherwise free, and falls back to as many threads as
fit beside what other processes use. `CpuLoad` measures that cheaply, over the last quarter
second or so, two ways:

- the CPU time /proc/stat counts as busy, minus this process's own: what other processes use.
  Its `nice` column is left out (unless we are niced ourselves): a process niced to 19, such as
  a background eval, takes a whole core while we run one thread and almost nothing once we run
  two, so counting it would keep us on one thread for good;
- the time this process's threads spent runnable but waiting for a core (/proc/self/task/*/
  schedstat): what actually kept our threads off their cores, whoever did it (a process niced to
  5 still takes a quarter of a core from ours). A count lowered for that waits `HOLD_S` before
  it is raised again.

The count is decided again every few tokens, so load that arrives or leaves mid-call is
followed; `threads_that_fit` keeps a margin between raising and lowering (hysteresis), so the
count does not flap around the threshold. Where /proc/stat cannot be read (not Linux), the
share is used as it is; without schedstat, only other processes' use counts.
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

HOLD_S = 5.0
"""After our threads were found waiting for their cores, the count is not raised for this long
(the process that took them may be invisible to the first measure)."""


@dataclass(frozen=True)
class LoadReading:
    """The cores over one window, as a thread choice sees them."""

    free_cores: float
    """Cores that other processes (of our niceness or less) left free."""
    waiting_cores: float = 0.0
    """Cores' worth of time our own threads spent runnable but not running."""


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
    own_waiting_s: float = 0.0
    """Seconds this process's live threads have waited, runnable, for a core."""


def load_between(before: CpuSample, after: CpuSample) -> LoadReading:
    """The load between two samples, on average."""
    wall = after.at - before.at
    if wall <= 0:
        return LoadReading(free_cores=float(after.cores))
    others = (after.competing_s - before.competing_s) - (after.own_s - before.own_s)
    waiting = after.own_waiting_s - before.own_waiting_s  # < 0 if a thread ended
    return LoadReading(
        free_cores=after.cores - max(0.0, others / wall), waiting_cores=max(0.0, waiting / wall)
    )


def threads_that_fit(
    share: int, reading: LoadReading | None, current: int, *, may_raise: bool = True
) -> int:
    """Threads for one call: its `share`, lowered to what fits beside the load in `reading`
    (None when unknown, which keeps the share).

    `current` is what the call runs on now (0 before it starts): keeping a count needs its
    cores free up to KEEP_MARGIN, raising it needs them free up to RAISE_MARGIN (and
    `may_raise`). While the call runs on several threads, time they spent waiting for their
    cores counts as cores taken.
    """
    if reading is None or share <= 1:
        return max(1, share)
    free = reading.free_cores
    if current > 1:
        free = min(free, current - reading.waiting_cores)
    for threads in range(share, 1, -1):
        if threads <= current:
            if free >= threads - KEEP_MARGIN:
                return threads
        elif may_raise and free >= threads - RAISE_MARGIN:
            return threads
    return 1


def contended(reading: LoadReading, current: int) -> bool:
    """Whether our threads spent so long waiting for cores that others must hold them."""
    return current > 1 and reading.waiting_cores > KEEP_MARGIN


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


def read_own_waiting_s() -> float:
    """Seconds this process's live threads have waited, runnable, for a core (0 where
    /proc/self/task/*/schedstat cannot be read)."""
    waiting_ns = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat", encoding="ascii") as schedstat:
                waiting_ns += int(schedstat.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile, or no schedstat
    return waiting_ns / 1e9


def _own_niceness() -> int:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return 0


class CpuLoad:
    """How many cores other processes leave free, measured over the latest window.

    Thread-safe; each `reading()` costs a clock read, and a few file reads once a window.
    """

    def __init__(
        self,
        *,
        read: Callable[[int], tuple[int, float] | None] = read_proc_stat,
        clock: Callable[[], float] = time.monotonic,
        own_cpu: Callable[[], float] = time.process_time,
        own_waiting: Callable[[], float] = read_own_waiting_s,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """The callables default to the real ones; tests pass their own."""
        self._read = read
        self._clock = clock
        self._own_cpu = own_cpu
        self._own_waiting = own_waiting
        self._sleep = sleep
        self._niceness = _own_niceness()
        self._lock = threading.Lock()
        self._last: CpuSample | None = None
        self._reading: LoadReading | None = None

    def sample(self) -> CpuSample | None:
        """The cumulative counters now (None where /proc/stat cannot be read)."""
        found = self._read(self._niceness)
        if found is None:
            return None
        cores, competing = found
        return CpuSample(self._clock(), cores, competing, self._own_cpu(), self._own_waiting())

    def start(self) -> None:
        """Take the first reading, so the first call's choice has a window behind it."""
        with self._lock:
            if self._last is None:
                self._last = self.sample()

    def reading(self) -> LoadReading | None:
        """The load over the latest window of WINDOW_S or more; None where it cannot be
        measured."""
        with self._lock:
            now = self._clock()
            last = self._last
            if last is not None and now - last.at < WINDOW_S and self._reading is not None:
                return self._reading
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
            self._reading = load_between(last, current)
            self._last = current
            return self._reading


class ThreadBudget:
    """Shares `total` threads equally between the calls running now, each share lowered to
    what fits beside other processes' load (`load`; None keeps the shares as they are)."""

    def __init__(
        self,
        total: int,
        load: CpuLoad | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.load = load
        self._clock = clock
        self._running = 0
        self._hold_until = float("-inf")
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
        reading = self.load.reading()
        if reading is None:
            return share
        mine = LoadReading(reading.free_cores / running, reading.waiting_cores / running)
        now = self._clock()
        with self._lock:
            if contended(mine, current):
                self._hold_until = now + HOLD_S
            may_raise = now >= self._hold_until
        return threads_that_fit(share, mine, current, may_raise=may_raise)
