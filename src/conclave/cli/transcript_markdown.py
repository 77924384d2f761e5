"""A kept run as Markdown, for `conclave log show` and `conclave log export`: everything the
transcript holds that a reader needs (every call, failed ones included, the agreement and
confidence, who decided each round), the sent prompts aside (`--json` has those)."""

from __future__ import annotations

from conclave.cli.run_text import agreement_line, decided_by_text, step_summary
from conclave.consensus.transcript import CallRecord, RoundRecord, StepRecord, Transcript


def transcript_markdown(transcript: Transcript) -> str:
    """A run as Markdown: its facts, the conversation, each round's calls, the answer."""
    lines = [f"## Run {transcript.id}", "", *_facts(transcript), "", "### Conversation", ""]
    for message in transcript.conversation:
        lines += [f"**{message.role}**:", "", _quoted(message.content), ""]
    if transcript.prepared:
        lines += ["### Before the first round", ""]
        for step in transcript.prepared:
            lines += _step(step)
    for round_ in transcript.rounds:
        lines += _round(round_)
    lines += ["### Answer", "", transcript.answer or "(none)"]
    return "\n".join(lines)


def _facts(transcript: Transcript) -> list[str]:
    facts = [f"- at: {transcript.created_at.isoformat(timespec='seconds')}"]
    for name in ("name", "strategy"):
        value = transcript.config.get(name)
        if isinstance(value, str):
            facts.append(f"- {'preset' if name == 'name' else name}: {value}")
    facts.append(f"- stopped: {transcript.stop_reason or 'unknown'}; {transcript.duration_s:.2f} s")
    if transcript.agreement is not None:
        facts.append(f"- {agreement_line(transcript.agreement)}")
    calls = [call for _, call in transcript.calls()]
    failed = sum(not call.ok for call in calls)
    facts.append(f"- calls: {len(calls)}, {failed} failed")
    usage = transcript.usage
    cost = "not reported" if usage.cost_usd is None else f"${usage.cost_usd:.6f}"
    facts.append(f"- tokens: {usage.prompt_tokens} in, {usage.completion_tokens} out; cost {cost}")
    return facts


def _round(round_: RoundRecord) -> list[str]:
    lines = [f"### Round {round_.index + 1}", ""]
    lines.append(f"- decided by: {decided_by_text(round_.decided_by)}")
    if round_.agreement is not None:
        lines.append(f"- {agreement_line(round_.agreement)}")
    lines.append("")
    for call in (*round_.responses, *round_.other_calls):
        lines += [_call_heading(call, call.role), "", _quoted(_call_text(call)), ""]
    consensus = round_.aggregate
    if consensus is not None and round_.reuses_answer:
        lines += [f"**consensus** ({consensus.model}'s answer):", "", _quoted(consensus.text), ""]
    elif consensus is not None:
        lines += [_call_heading(consensus, "consensus"), "", _quoted(_call_text(consensus)), ""]
    for step in round_.steps:
        lines += _step(step)
    if round_.revised_answer is not None:
        lines += ["**consensus as revised by a check**:", "", _quoted(round_.revised_answer), ""]
    return lines


def _step(step: StepRecord) -> list[str]:
    lines = [f"- step {step_summary(step)}", ""]
    for call in step.calls:
        lines += [
            _call_heading(call, f"{step.step} {call.role}"),
            "",
            _quoted(_call_text(call)),
            "",
        ]
    return lines


def _call_heading(call: CallRecord, role: str) -> str:
    outcome = (
        f"FAILED ({call.error.type})" if call.error else f"{call.usage.completion_tokens} tokens"
    )
    return f"**{call.model}** ({role}, {call.latency_s:.2f} s, {outcome}):"


def _call_text(call: CallRecord) -> str:
    return call.error.message if call.error else call.text


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in (text or "(empty)").splitlines()) or "> (empty)"
