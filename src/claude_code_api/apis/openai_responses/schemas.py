"""OpenAI's Responses API request as Pydantic models: the fields the gateway maps.

fields.py's table takes ignored and unknown fields (and items, parts and tools of kinds the gateway
does not offer) out before these models see a request; what is left is validated strictly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

# Far above any model's output limit; the bound keeps absurd numbers (2^64) a 400 naming the field
# rather than an overflow further in.
MAX_TOKENS_LIMIT = 1_000_000


class WireModel(BaseModel):
    """A request shape: unknown fields are refused, as OpenAI does."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Unsupported(BaseModel):
    """Any item, part or tool of a kind this gateway does not offer: refused by name in translation."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str


def _kind(default: str, known: tuple[str, ...]) -> Any:
    """A discriminator on `type` (absent: `default`) that sends unknown kinds to `Unsupported`."""

    def kind(value: Any) -> str:
        found = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", default)
        return found if found in known else "unsupported"

    return Discriminator(kind)


class InputText(WireModel):
    type: Literal["input_text"]
    text: str
    prompt_cache_breakpoint: dict[str, Any] | None = None


class InputImage(WireModel):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None
    prompt_cache_breakpoint: dict[str, Any] | None = None


class OutputText(WireModel):
    type: Literal["output_text"]
    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class Refusal(WireModel):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    Annotated[InputText, Tag("input_text")]
    | Annotated[InputImage, Tag("input_image")]
    | Annotated[OutputText, Tag("output_text")]
    | Annotated[Refusal, Tag("refusal")]
    | Annotated[Unsupported, Tag("unsupported")],
    _kind("", ("input_text", "input_image", "output_text", "refusal")),
]


class MessageItem(WireModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None
    phase: str | None = None


class FunctionCallItem(WireModel):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    namespace: str | None = None
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(WireModel):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class ReasoningItem(BaseModel):
    """Reasoning from elsewhere: left out, as this gateway never produces any."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["reasoning"]


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[Unsupported, Tag("unsupported")],
    _kind("message", ("message", "function_call", "function_call_output", "reasoning")),
]


class FunctionTool(WireModel):
    type: Literal["function"]
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class NamespaceTool(WireModel):
    """A group of functions under one name (Codex CLI's sub-agent tools); Claude sees each function
    as `<namespace>__<name>`, and its calls come back with `namespace` and `name` apart."""

    type: Literal["namespace"]
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    tools: list[FunctionTool]


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")]
    | Annotated[NamespaceTool, Tag("namespace")]
    | Annotated[Unsupported, Tag("unsupported")],
    _kind("", ("function", "namespace")),
]


class FunctionChoice(WireModel):
    type: Literal["function"]
    name: str


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        Annotated[FunctionChoice, Tag("function")] | Annotated[Unsupported, Tag("unsupported")],
        _kind("", ("function",)),
    ]
)


class TextFormatText(WireModel):
    type: Literal["text"]


class TextFormatJsonObject(WireModel):
    type: Literal["json_object"]


class TextFormatJsonSchema(WireModel):
    type: Literal["json_schema"]
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(WireModel):
    format: (
        Annotated[TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")]
        | None
    ) = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(WireModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptions(WireModel):
    include_obfuscation: bool | None = None


class ResponsesRequest(WireModel):
    """`POST /v1/responses` body; every documented field is named, so unknown ones are a 400."""

    model: str
    input: str | Annotated[list[InputItem], Field(min_length=1)]
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    max_tool_calls: Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    include: list[str] | None = None
    prompt: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    moderation: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    access_programs: dict[str, Any] | None = None
    background_options: dict[str, Any] | None = None
    prompt_cache_options: dict[str, Any] | None = None
