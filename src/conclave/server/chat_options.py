"""What `/v1/chat/completions` does with each of OpenAI's chat parameters.

The sampling parameters become the run's `RequestSampling` (applied to every model call, see
`request_sampling`), `response_format` the answer's format, `store` whether the run is kept,
`stream` and `stream_options` how it is sent. A parameter a consensus cannot honour is refused
with a 400 naming it and saying why (unless it holds its no-op value, such as `n: 1` or
`tool_choice: "none"`): nothing a client asks for is silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conclave.server.api_errors import ApiError, unsupported_parameter
from conclave.server.request_sampling import RequestSampling
from conclave.server.response_format import AnswerFormat
from conclave.server.schemas import ChatCompletionRequest, TextFormat

_TOOLS = "tool calling is not supported by a consensus; send the request without it"
_NO_TOOL_CHOICE = "tool calling is not supported by a consensus; leave it out or send `none`"
_TEXT_ONLY = "a consensus answers in text only; leave it out"
_PRESET_DECIDES = (
    "the preset decides how its models answer; name another preset (or `<preset>:<strategy>`) "
    "as `model` instead"
)
_NO_LOGPROBS = (
    "a consensus answer has no token log-probabilities (it is written from several models' "
    "answers); leave it out or send false"
)


def _absent(value: object) -> bool:
    return value is None


def _empty(value: object) -> bool:
    return not value


_REFUSED: dict[str, tuple[Callable[[object], bool], str]] = {
    "tools": (_empty, _TOOLS),
    "functions": (_empty, _TOOLS),
    "tool_choice": (lambda value: value in (None, "none"), _NO_TOOL_CHOICE),
    "function_call": (lambda value: value in (None, "none"), _NO_TOOL_CHOICE),
    "parallel_tool_calls": (_absent, _TOOLS),
    "n": (lambda value: value in (None, 1), "a consensus is one answer: only n=1 is supported"),
    "logprobs": (lambda value: not value, _NO_LOGPROBS),
    "top_logprobs": (_absent, _NO_LOGPROBS),
    "logit_bias": (
        _empty,
        "token ids differ between the models of a panel, so no bias can apply to all; leave it out",
    ),
    "user": (
        _absent,
        "conclave neither passes an end-user id to the panel's providers nor keeps one; leave "
        "it out",
    ),
    "metadata": (_absent, "conclave keeps no metadata with a run; leave it out"),
    "modalities": (lambda value: value in (None, ["text"]), _TEXT_ONLY),
    "audio": (_absent, _TEXT_ONLY),
    "prediction": (_absent, "predicted outputs are not supported by a consensus; leave it out"),
    "reasoning_effort": (_absent, _PRESET_DECIDES),
    "verbosity": (_absent, _PRESET_DECIDES),
    "service_tier": (_absent, "conclave has a single service tier; leave it out"),
    "web_search_options": (_absent, "a consensus does not search the web; leave it out"),
    "prompt_cache_key": (_absent, "not supported by a consensus; leave it out"),
    "safety_identifier": (_absent, "not supported by a consensus; leave it out"),
}


@dataclass(frozen=True)
class ChatOptions:
    """A chat request's options, as the run and the response take them."""

    sampling: RequestSampling
    answer_format: AnswerFormat | None
    stream: bool
    include_usage: bool
    keep: bool
    """Whether the run is kept in the run store (`store: false` says not to)."""


def chat_options(body: ChatCompletionRequest) -> ChatOptions:
    """The options of `body`; ApiError 400 for any a consensus cannot honour."""
    for param, (accepted, reason) in _REFUSED.items():
        if not accepted(getattr(body, param)):
            raise unsupported_parameter(param, reason)
    stream = bool(body.stream)
    if body.stream_options is not None and not stream:
        raise ApiError(
            400,
            "stream_options: only allowed when `stream` is true",
            code="invalid_value",
            param="stream_options",
        )
    return ChatOptions(
        sampling=request_sampling(body),
        answer_format=answer_format(body, stream=stream),
        stream=stream,
        include_usage=body.stream_options is not None and body.stream_options.include_usage,
        keep=body.store is not False,
    )


def request_sampling(body: ChatCompletionRequest) -> RequestSampling:
    """The sampling options of `body` (OpenAI's two names for the token cap are one)."""
    if body.max_tokens is not None and body.max_completion_tokens is not None:
        raise ApiError(
            400,
            "max_tokens and max_completion_tokens are the same cap: give only one of them",
            code="invalid_value",
            param="max_completion_tokens",
        )
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return RequestSampling(
        max_tokens=body.max_tokens or body.max_completion_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=stop,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
    )


def answer_format(body: ChatCompletionRequest, *, stream: bool) -> AnswerFormat | None:
    """The JSON format the answer must have, or None for text; 400 when it cannot be given."""
    requested = body.response_format
    if requested is None or isinstance(requested, TextFormat):
        return None
    if stream:
        raise unsupported_parameter(
            "response_format",
            f"{requested.type} cannot be streamed (the answer is checked, and may be rewritten, "
            "once the consensus is complete): send `stream: false`",
        )
    return AnswerFormat(requested)
