"""The thread policy of the embedded models: how many threads a call gets from the measured load.

Pure logic, fed with made-up readings: no model, no timing.
"""

from __future__ import annotations

import pytest

from conclave.providers.thread_policy import (
    FRESH_WINDOW_S,
    HOLD_S,
    STALE_S,
    WINDOW_S,
    CpuLoad,
    CpuSample,
    LoadReading,
    ThreadBudget,
    contended,
    load_between,
    parse_proc_stat,
    threads_that_fit,
)

PROC_STAT = """\
cpu  1000 500 200 9000 10 0 30 20 0 0
cpu0 500 250 100 4500 5 0 15 10 0 0
cpu1 500 250 100 4500 5 0 15 10 0 0
intr 18789586 0 0
ctxt 123
"""


# -- threads_that_fit: the choice ---------------------------------------------------------------


def test_a_call_gets_its_whole_share_while_the_cores_are_free() -> None:
    assert threads_that_fit(2, LoadReading(2.0), current=0) == 2
    assert threads_that_fit(2, LoadReading(1.9), current=0) == 2  # a little noise is no load


def test_a_call_drops_to_one_thread_when_another_process_takes_a_core() -> None:
    assert threads_that_fit(2, LoadReading(1.0), current=2) == 1
    assert threads_that_fit(2, LoadReading(0.2), current=2) == 1
    assert threads_that_fit(2, LoadReading(1.0), current=0) == 1  # busy from the start


def test_on_more_cores_a_share_is_lowered_to_what_fits() -> None:
    assert threads_that_fit(8, LoadReading(5.0), current=8) == 5
    assert threads_that_fit(4, LoadReading(8.0), current=0) == 4  # never more than the share


def test_unknown_load_or_a_share_of_one_is_kept_as_it_is() -> None:
    assert threads_that_fit(2, None, current=0) == 2  # no /proc/stat
    assert threads_that_fit(1, LoadReading(2.0), current=0) == 1
    assert threads_that_fit(1, LoadReading(0.0), current=1) == 1


def test_the_count_does_not_flap_when_the_load_hovers_near_the_threshold() -> None:
    """Between the raise and keep margins the count stays what it is, so a load wavering
    around a quarter of a core changes nothing, in either state."""
    hovering = [1.72, 1.8, 1.7, 1.78, 1.74, 1.8, 1.71]
    for start in (1, 2):
        current = start
        for free in hovering:
            current = threads_that_fit(2, LoadReading(free), current)
            assert current == start


def test_load_that_arrives_and_leaves_mid_call_is_followed() -> None:
    current = 0
    chosen = []
    for free in [2.0, 1.95, 1.1, 1.0, 1.2, 1.9, 2.0]:
        current = threads_that_fit(2, LoadReading(free), current)
        chosen.append(current)
    assert chosen == [2, 2, 1, 1, 1, 2, 2]


# -- measuring the others' load ---------------------------------------------------------------


def test_the_load_of_others_excludes_this_process() -> None:
    before = CpuSample(at=10.0, cores=2, competing_s=100.0, own_s=50.0)
    after = CpuSample(at=11.0, cores=2, competing_s=101.5, own_s=51.0)  # we used 1 core
    assert load_between(before, after).free_cores == pytest.approx(1.5)
    idle = CpuSample(at=12.0, cores=2, competing_s=101.5, own_s=51.0)
    assert load_between(after, idle).free_cores == 2.0
    assert load_between(after, after).free_cores == 2.0  # no time passed


def test_waiting_of_our_threads_is_measured_and_an_ended_thread_is_no_negative_wait() -> None:
    before = CpuSample(at=10.0, cores=2, competing_s=0.0, own_s=0.0, own_waiting_s=1.0)
    waited = CpuSample(at=10.5, cores=2, competing_s=0.0, own_s=0.0, own_waiting_s=1.25)
    assert load_between(before, waited).waiting_cores == pytest.approx(0.5)
    thread_ended = CpuSample(at=11.0, cores=2, competing_s=0.0, own_s=0.0, own_waiting_s=0.5)
    assert load_between(waited, thread_ended).waiting_cores == 0.0


def test_threads_kept_off_their_cores_drop_to_one_even_if_no_other_process_shows() -> None:
    """A process niced to 5 is not in what other processes use, but takes our cores."""
    reading = LoadReading(free_cores=2.0, waiting_cores=0.6)
    assert contended(reading, current=2)
    assert threads_that_fit(2, reading, current=2) == 1
    a_little_waiting = LoadReading(free_cores=2.0, waiting_cores=0.1)
    assert not contended(a_little_waiting, current=2)
    assert threads_that_fit(2, a_little_waiting, current=2) == 2
    assert not contended(reading, current=1)  # one thread: no barriers, waiting is harmless


def test_proc_stat_counts_niced_processes_only_for_a_niced_process() -> None:
    # user 1000 + system 200 + softirq 30 + steal 20; nice 500; 100 ticks a second
    assert parse_proc_stat(PROC_STAT, own_niceness=0, ticks_per_s=100) == (2, 12.5)
    assert parse_proc_stat(PROC_STAT, own_niceness=19, ticks_per_s=100) == (2, 17.5)


@pytest.mark.parametrize("text", ["", "intr 1 2 3\n", "cpu  1 2 three 4 5 6 7 8\n", "cpu 1 2\n"])
def test_an_unreadable_proc_stat_is_no_reading(text: str) -> None:
    assert parse_proc_stat(text, own_niceness=0, ticks_per_s=100) is None


class FakeMachine:
    """A clock and /proc/stat counters that the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.competing_s = 0.0
        self.own_s = 0.0
        self.reads = 0
        self.readable = True
        self.others_now = 0.0
        """Cores other processes use while CpuLoad sleeps."""

    def read(self, _niceness: int) -> tuple[int, float] | None:
        self.reads += 1
        return (2, self.competing_s) if self.readable else None

    def sleep(self, seconds: float) -> None:
        self.run(seconds, others=self.others_now, own=0.0)

    def run(self, seconds: float, *, others: float, own: float) -> None:
        """`seconds` pass with other processes on `others` cores and this one on `own`."""
        self.now += seconds
        self.competing_s += (others + own) * seconds
        self.own_s += own * seconds

    def load(self) -> CpuLoad:
        return CpuLoad(
            read=self.read, clock=lambda: self.now, own_cpu=lambda: self.own_s, sleep=self.sleep
        )


def test_cpu_load_reports_the_cores_other_processes_leave_free() -> None:
    machine = FakeMachine()
    load = machine.load()
    load.start()
    machine.run(0.5, others=1.0, own=1.0)
    assert _free_cores(load) == pytest.approx(1.0)
    machine.run(0.5, others=0.0, own=2.0)  # our own spinning threads are not load
    assert _free_cores(load) == pytest.approx(2.0)


def _free_cores(load: CpuLoad) -> float:
    reading = load.reading()
    assert reading is not None
    return reading.free_cores


def test_cpu_load_reads_proc_stat_at_most_once_a_window() -> None:
    machine = FakeMachine()
    load = machine.load()
    load.start()
    machine.run(WINDOW_S, others=1.0, own=1.0)
    first = load.reading()
    reads = machine.reads
    machine.run(WINDOW_S / 4, others=0.0, own=2.0)
    assert load.reading() == first  # within the window: the last answer, no read
    assert machine.reads == reads


def test_a_stale_reading_is_replaced_by_a_fresh_window() -> None:
    machine = FakeMachine()
    load = machine.load()
    load.start()
    machine.run(STALE_S * 4, others=0.0, own=0.0)  # long idle: says nothing about now
    machine.others_now = 2.0  # the others are busy right now...
    reading = load.reading()  # ...which a fresh window of its own sees, not the idle average
    assert reading is not None
    assert reading.free_cores < 1.0
    assert machine.now - 100.0 == pytest.approx(STALE_S * 4 + FRESH_WINDOW_S)


def test_no_proc_stat_means_no_reading() -> None:
    machine = FakeMachine()
    machine.readable = False
    load = machine.load()
    load.start()
    machine.run(1.0, others=2.0, own=0.0)
    assert load.reading() is None


# -- the budget: equal shares, lowered by load ---------------------------------------------------


class FixedLoad(CpuLoad):
    def __init__(self, reading: LoadReading | None) -> None:
        super().__init__()
        self.fixed = reading

    def reading(self) -> LoadReading | None:
        return self.fixed


def test_a_lone_call_gets_the_whole_budget_and_concurrent_calls_share_it() -> None:
    budget = ThreadBudget(2)
    budget.enter()
    assert budget.share() == 2  # generation and prompt processing both on every core
    budget.enter()
    assert budget.share() == 1  # two calls side by side, one core each
    budget.enter()
    assert budget.share() == 1  # never fewer than one
    budget.leave()
    budget.leave()
    assert budget.share() == 2  # the survivor takes the cores back
    pinned = ThreadBudget(1)  # CONCLAVE_THREADS=1
    pinned.enter()
    assert pinned.share() == 1


def test_the_budget_gives_a_lone_call_one_thread_while_other_processes_hold_a_core() -> None:
    load = FixedLoad(LoadReading(free_cores=0.9))
    budget = ThreadBudget(2, load)
    budget.enter()
    assert budget.share(current=2) == 1
    load.fixed = LoadReading(free_cores=2.0)
    assert budget.share(current=1) == 2
    load.fixed = None  # not measurable: the share as it is
    assert budget.share(current=0) == 2


def test_after_our_threads_waited_for_their_cores_the_count_is_held_down_a_while() -> None:
    now = [0.0]
    load = FixedLoad(LoadReading(free_cores=2.0, waiting_cores=0.7))
    budget = ThreadBudget(2, load, clock=lambda: now[0])
    budget.enter()
    assert budget.share(current=2) == 1  # kept off our cores: down to one thread
    load.fixed = LoadReading(free_cores=2.0)  # the culprit does not show among the others
    now[0] += HOLD_S / 2
    assert budget.share(current=1) == 1  # held
    now[0] += HOLD_S
    assert budget.share(current=1) == 2  # then tried again


def test_calls_running_at_once_divide_the_free_cores() -> None:
    budget = ThreadBudget(8, FixedLoad(LoadReading(free_cores=5.0)))
    budget.enter()
    budget.enter()
    assert budget.share(current=4) == 2  # 4 each by the budget, 2.5 free cores each
