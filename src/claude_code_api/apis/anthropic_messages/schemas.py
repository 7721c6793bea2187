"""Anthropic's Messages API request as Pydantic models: the fields the gateway maps.

fields.py's table takes ignored and unknown fields out before these models see a request; what is
left is validated strictly, and a field these models do not know is a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

# Anthropic's largest output limit today is 128K tokens; the bound keeps absurd numbers (2^64) a 400
# naming the field rather than an overflow further in.
MAX_TOKENS_LIMIT = 1_000_000
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]


class WireModel(BaseModel):
    """A request shape: unknown fields are refused, as Anthropic does."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheControl(WireModel):
    """Accepted and left out: Claude Code places its own cache breakpoints."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class TextBlock(WireModel):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None
    citations: list[dict[str, Any]] | None = None


class Base64ImageSource(WireModel):
    type: Literal["base64"]
    media_type: str
    data: str


class URLImageSource(WireModel):
    type: Literal["url"]
    url: str


class FileImageSource(WireModel):
    type: Literal["file"]
    file_id: str


ImageSource = Annotated[Base64ImageSource | URLImageSource | FileImageSource, Field(discriminator="type")]


class ImageBlock(WireModel):
    type: Literal["image"]
    source: ImageSource
    cache_control: CacheControl | None = None


class ToolUseBlock(WireModel):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]
    cache_control: CacheControl | None = None


ToolResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(WireModel):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ToolResultPart] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class ThinkingBlock(WireModel):
    """Earlier thinking, left out: Anthropic drops it from earlier turns too, and this gateway never
    returns any."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class ServerBlock(WireModel):
    """Blocks of features Claude Code does not offer here; named so that they get a clear 400."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal[
        "document",
        "search_result",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "mcp_tool_use",
        "mcp_tool_result",
    ]


InputBlock = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | ServerBlock,
    Field(discriminator="type"),
]


class UserMessage(WireModel):
    role: Literal["user"]
    content: str | list[InputBlock]


class AssistantMessage(WireModel):
    role: Literal["assistant"]
    content: str | list[InputBlock]


class SystemMessage(WireModel):
    role: Literal["system"]
    content: str | list[TextBlock]
    output_config: OutputConfig | None = None


InputMessage = Annotated[UserMessage | AssistantMessage | SystemMessage, Field(discriminator="role")]


class CustomTool(WireModel):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    input_schema: dict[str, Any]
    description: str | None = None
    type: Literal["custom"] | None = None
    cache_control: CacheControl | None = None
    strict: bool | None = None


class ServerTool(WireModel):
    """Anthropic's server tools (web search, code execution, ...): refused, see `client_tools`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str
    name: str | None = None


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "custom" if kind in (None, "custom") else "server"


Tool = Annotated[
    Annotated[CustomTool, Tag("custom")] | Annotated[ServerTool, Tag("server")],
    Discriminator(_tool_kind),
]


class ToolChoiceAuto(WireModel):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(WireModel):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(WireModel):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(WireModel):
    type: Literal["none"]


ToolChoice = Annotated[
    ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone, Field(discriminator="type")
]


class ThinkingConfig(WireModel):
    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: Annotated[int, Field(ge=1024, le=MAX_TOKENS_LIMIT)] | None = None


class JsonOutputFormat(WireModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(WireModel):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: JsonOutputFormat | None = None


class Metadata(WireModel):
    user_id: str | None = None


class MessagesRequest(WireModel):
    """`POST /v1/messages` body."""

    model: str
    max_tokens: MaxTokens
    messages: Annotated[list[InputMessage], Field(min_length=1)]
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    metadata: Metadata | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0, le=MAX_TOKENS_LIMIT)] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    cache_control: CacheControl | None = None


class CountTokensRequest(MessagesRequest):
    """`POST /v1/messages/count_tokens` body: a Messages request that generates nothing."""

    max_tokens: MaxTokens = 1


SystemMessage.model_rebuild()
