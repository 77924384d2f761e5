"""A kept run as Markdown, for `conclave log show` and `conclave log export`."""

from __future__ import annotations

from conclave.consensus.transcript import CallRecord, Transcript


def transcript_markdown(transcript: Transcript) -> str:
    """A run as Markdown: conversation, rounds (members, aggregate), answer and totals."""
    lines = [f"## Run {transcript.id}", ""]
    lines.append(f"- at: {transcript.created_at.isoformat(timespec='seconds')}")
    preset = transcript.config.get("name")
    if isinstance(preset, str):
        lines.append(f"- preset: {preset}")
    lines.append(f"- stopped: {transcript.stop_reason or 'unknown'}; {transcript.duration_s:.2f} s")
    usage = transcript.usage
    cost = "not reported" if usage.cost_usd is None else f"${usage.cost_usd:.6f}"
    lines.append(f"- tokens: {usage.prompt_tokens} in, {usage.completion_tokens} out; cost {cost}")
    lines += ["", "### Conversation", ""]
    for message in transcript.conversation:
        lines += [f"**{message.role}**:", "", _quoted(message.content), ""]
    for round_ in transcript.rounds:
        lines += [f"### Round {round_.index + 1}", ""]
        for call in round_.responses:
            lines += [_call_heading(call), "", _quoted(_call_text(call)), ""]
        if round_.aggregate is not None:
            lines += [
                _call_heading(round_.aggregate, "aggregate"),
                "",
                _quoted(_call_text(round_.aggregate)),
                "",
            ]
    lines += ["### Answer", "", transcript.answer or "(none)"]
    return "\n".join(lines)


def _call_heading(call: CallRecord, role: str = "member") -> str:
    outcome = (
        f"FAILED ({call.error.type})" if call.error else f"{call.usage.completion_tokens} tokens"
    )
    return f"**{call.model}** ({role}, {call.latency_s:.2f} s, {outcome}):"


def _call_text(call: CallRecord) -> str:
    return call.error.message if call.error else call.text


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in (text or "(empty)").splitlines()) or "> (empty)"
