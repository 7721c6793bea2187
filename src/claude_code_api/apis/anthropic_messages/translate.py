"""Anthropic Messages requests (schemas.py) to Claude requests; pure.

Client tools reach Claude as `mcp__client__<name>` and come back without the prefix. fields.py's table
has already taken out what the gateway ignores and refused what it cannot honour.
"""

from __future__ import annotations

from claude_code_api.answer.blocks import (
    ContentBlock,
    ImageContent,
    ToolResultContent,
    text_block,
    tool_use_block,
)
from claude_code_api.answer.images import image_block_from_base64, image_block_from_url
from claude_code_api.answer.request import (
    ClaudeRequest,
    ClaudeThinking,
    ClaudeTurn,
    RequestOptions,
    claude_request,
)
from claude_code_api.answer.tools import ClientTool, client_tool_list, tool_use_instruction
from claude_code_api.apis.anthropic_messages.schemas import (
    AssistantMessage,
    Base64ImageSource,
    ImageBlock,
    MessagesRequest,
    OutputConfig,
    ServerBlock,
    ServerTool,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoice,
    ToolChoiceAny,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultBlock,
    ToolUseBlock,
    URLImageSource,
    UserMessage,
)
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError


def translate_messages_request(
    request: MessagesRequest, model: ModelChoice, fetch_image_urls: bool = False
) -> ClaudeRequest:
    """Turns a validated Messages request (after fields.py's table) into a Claude request."""
    system_parts = [_system_text(request.system)]
    turns: list[ClaudeTurn] = []
    for index, message in enumerate(request.messages):
        if isinstance(message, SystemMessage):
            system_parts.append(_system_text(message.content))
            continue
        content = _content(message, index, fetch_image_urls)
        if content:
            turns.append(ClaudeTurn(message.role, content))
    tools = client_tools(request)
    system_parts.append(_tool_choice_instruction(request.tool_choice, tools))
    return claude_request(model.claude_model, system_parts, turns, tools, _options(request), param="messages")


def _options(request: MessagesRequest) -> RequestOptions:
    output_config = request.output_config or OutputConfig()
    return RequestOptions(
        max_output_tokens=request.max_tokens,
        stop_sequences=request.stop_sequences or (),
        effort=output_config.effort or _turn_effort(request),
        output_schema=output_config.format.schema_ if output_config.format else None,
        thinking=claude_thinking(request.thinking),
    )


def _turn_effort(request: MessagesRequest) -> str | None:
    # Claude Code puts the effort of a turn on its system-role message too (beta per-turn-control);
    # Claude Code behind the gateway takes one effort per run, so the last one given applies.
    efforts = [
        message.output_config.effort
        for message in request.messages
        if isinstance(message, SystemMessage) and message.output_config and message.output_config.effort
    ]
    return efforts[-1] if efforts else None


def claude_thinking(thinking: ThinkingConfig | None) -> ClaudeThinking | None:
    """The thinking setting as Claude Code's thinking option: adaptive, a token budget or off.

    Anthropic's `between_tools` (think between tool calls) is what adaptive thinking does; absent,
    Claude Code decides (adaptively). How thinking is displayed does not matter here: the gateway
    returns no thinking blocks.
    """
    if thinking is None:
        return None
    if thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise InvalidRequestError(
                "thinking.budget_tokens is required when thinking is enabled.", param="thinking.budget_tokens"
            )
        return {"type": "enabled", "budget_tokens": thinking.budget_tokens}
    if thinking.type == "disabled":
        return {"type": "disabled"}
    return {"type": "adaptive"}


def _system_text(system: str | list[TextBlock] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    return "\n\n".join(block.text for block in system)


def _content(message: UserMessage | AssistantMessage, index: int, fetch: bool) -> tuple[ContentBlock, ...]:
    if isinstance(message.content, str):
        return (text_block(message.content),)
    blocks: list[ContentBlock] = []
    for position, block in enumerate(message.content):
        where = f"messages[{index}].content[{position}]"
        if isinstance(block, ThinkingBlock):
            continue
        if isinstance(block, ServerBlock):
            raise UnsupportedParameterError(where, f"content blocks of type '{block.type}'.")
        allowed = (ToolUseBlock,) if message.role == "assistant" else (ImageBlock, ToolResultBlock)
        if not isinstance(block, (TextBlock, *allowed)):
            raise InvalidRequestError(
                f"{where}: a '{block.type}' block cannot appear in a {message.role} message.", param=where
            )
        blocks.append(_block(block, where, fetch))
    if not blocks and message.role == "user":
        return (text_block(""),)  # an empty user message: carried by the empty-text rule
    return tuple(blocks)


def _block(
    block: TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, where: str, fetch: bool
) -> ContentBlock:
    if isinstance(block, TextBlock):
        return text_block(block.text)
    if isinstance(block, ImageBlock):
        return _image(block, where, fetch)
    if isinstance(block, ToolUseBlock):
        return tool_use_block(block.id, block.name, block.input)
    result: ToolResultContent = {"type": "tool_result", "tool_use_id": block.tool_use_id}
    if isinstance(block.content, str):
        result["content"] = block.content
    elif block.content:
        result["content"] = [
            text_block(part.text)
            if isinstance(part, TextBlock)
            else _image(part, f"{where}.content[{n}]", fetch)
            for n, part in enumerate(block.content)
        ]
    if block.is_error:
        result["is_error"] = True
    return result


def _image(block: ImageBlock, where: str, fetch: bool) -> ImageContent:
    source = block.source
    if isinstance(source, Base64ImageSource):
        return image_block_from_base64(source.media_type, source.data, f"{where}.source")
    if isinstance(source, URLImageSource):
        if not source.url[:8].lower().startswith(("http://", "https://")):
            raise InvalidRequestError(
                f"{where}.source.url must be an http(s) URL.", param=f"{where}.source.url"
            )
        return image_block_from_url(source.url, f"{where}.source", fetch_allowed=fetch)
    raise UnsupportedParameterError(
        f"{where}.source", "file sources need the Files API, which is not offered."
    )


def client_tools(request: MessagesRequest) -> tuple[ClientTool, ...]:
    """The client's tools Claude may call: none when `tool_choice` is none."""
    if not request.tools or isinstance(request.tool_choice, ToolChoiceNone):
        return ()
    tools: list[ClientTool] = []
    for index, tool in enumerate(request.tools):
        if isinstance(tool, ServerTool):
            raise UnsupportedParameterError(
                f"tools[{index}]",
                f"server tools ('{tool.type}') are not available through this gateway; "
                "only custom tools with name, description and input_schema.",
            )
        tools.append(ClientTool(tool.name, tool.description or tool.name, tool.input_schema))
    return client_tool_list(tools)


def _tool_choice_instruction(choice: ToolChoice | None, tools: tuple[ClientTool, ...]) -> str:
    if choice is None or isinstance(choice, ToolChoiceNone) or not tools:
        return ""
    return tool_use_instruction(
        tools,
        named=choice.name if isinstance(choice, ToolChoiceTool) else None,
        required=isinstance(choice, ToolChoiceAny),
        one_call=bool(choice.disable_parallel_tool_use),
        param="tool_choice.name",
    )
