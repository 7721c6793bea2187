"""OpenAI chat requests to Claude requests; pure.

Nothing here awaits, reads the clock or the environment, so the same input always gives the same output.
"""

from __future__ import annotations

from typing import Any

from claude_code_api.answer.blocks import (
    ContentBlock,
    TextContent,
    ToolUseContent,
    json_arguments,
    text_block,
    tool_use_block,
)
from claude_code_api.answer.images import image_block_from_url
from claude_code_api.answer.request import ClaudeRequest, ClaudeTurn, RequestOptions, claude_request
from claude_code_api.answer.tools import ClientTool, client_tool_list, tool_input_schema, tool_use_instruction
from claude_code_api.apis.openai_chat.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatMessage,
    DeveloperMessage,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError


def translate_request(
    request: ChatCompletionRequest, model: ModelChoice, fetch_image_urls: bool = False
) -> ClaudeRequest:
    """Turns a validated chat request (after fields.py's table) into a Claude request.

    With `fetch_image_urls`, http(s) image URLs become URL sources for answer/images.py to fetch.
    """
    system_parts: list[str] = []
    turns: list[ClaudeTurn] = []
    for index, message in enumerate(request.messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            system_parts.append(_plain_text(message.content))
            continue
        turns.append(_claude_turn(message, index, fetch_image_urls))
    tools = client_tools(request)
    system_parts.append(tool_choice_instruction(request, tools))
    return claude_request(model.claude_model, system_parts, turns, tools, _options(request), param="messages")


def _options(request: ChatCompletionRequest) -> RequestOptions:
    stop = request.stop
    return RequestOptions(
        max_output_tokens=request.max_completion_tokens or request.max_tokens,
        stop_sequences=(stop,) if isinstance(stop, str) else (stop or ()),
        effort=request.reasoning_effort,
        output_schema=output_schema(request),
    )


def client_tools(request: ChatCompletionRequest) -> tuple[ClientTool, ...]:
    """The functions Claude may call: none when `tool_choice` is "none"."""
    if not request.tools or request.tool_choice == "none":
        return ()
    return client_tool_list(
        ClientTool(
            name=tool.function.name,
            description=tool.function.description or tool.function.name,
            input_schema=tool_input_schema(tool.function.parameters),
        )
        for tool in request.tools
    )


def tool_choice_instruction(request: ChatCompletionRequest, tools: tuple[ClientTool, ...]) -> str:
    """System text for what Claude Code cannot set itself: a required tool, one call at a time."""
    choice = request.tool_choice
    return tool_use_instruction(
        tools,
        named=choice.function.name if isinstance(choice, NamedToolChoice) else None,
        required=choice == "required",
        one_call=request.parallel_tool_calls is False,
        param="tool_choice",
    )


def output_schema(request: ChatCompletionRequest) -> dict[str, Any] | None:
    """The JSON schema the answer must follow: any object for json_object, the given one for json_schema."""
    response_format = request.response_format
    if isinstance(response_format, JsonObjectFormat):
        return {"type": "object"}
    if isinstance(response_format, JsonSchemaResponseFormat):
        return response_format.json_schema.schema_ or {"type": "object"}
    return None


def _claude_turn(message: ChatMessage, index: int, fetch_image_urls: bool) -> ClaudeTurn:
    if isinstance(message, UserMessage):
        return ClaudeTurn("user", _user_content(message, index, fetch_image_urls))
    if isinstance(message, AssistantMessage):
        return ClaudeTurn("assistant", _assistant_content(message, index))
    if isinstance(message, ToolMessage):
        result: ContentBlock = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": _plain_text(message.content),
        }
        return ClaudeTurn("user", (result,))
    raise InvalidRequestError(f"Unexpected message role at messages[{index}].")


def _user_content(message: UserMessage, index: int, fetch_image_urls: bool) -> tuple[ContentBlock, ...]:
    if isinstance(message.content, str):
        return (_text_block(message.content, index),)
    blocks: list[ContentBlock] = []
    for part_index, part in enumerate(message.content):
        where = f"messages[{index}].content[{part_index}]"
        if isinstance(part, TextPart):
            blocks.append(_text_block(part.text, index))
        elif isinstance(part, ImagePart):
            blocks.append(image_block_from_url(part.image_url.url, where, fetch_allowed=fetch_image_urls))
        else:
            raise UnsupportedParameterError(where, f"content parts of type '{part.type}'.")
    return tuple(blocks)


def _assistant_content(message: AssistantMessage, index: int) -> tuple[ContentBlock, ...]:
    if message.function_call is not None or message.audio is not None:
        raise UnsupportedParameterError(
            f"messages[{index}]", "legacy function_call and audio messages are not supported."
        )
    content = message.content
    if content is None or content == "" or content == []:
        text = message.refusal or ""
    elif isinstance(content, str):
        text = content
    else:
        text = "".join(p.text if isinstance(p, TextPart) else p.refusal for p in content)
    calls = tuple(_tool_use_block(call, index) for call in message.tool_calls or ())
    if calls and not text.strip():
        return calls
    return (_text_block(text, index), *calls)


def _tool_use_block(call: ToolCall, index: int) -> ToolUseContent:
    arguments = json_arguments(call.function.arguments)
    if arguments is None:
        raise InvalidRequestError(
            f"messages[{index}].tool_calls: the arguments of '{call.function.name}' must be a JSON object.",
            param=f"messages[{index}].tool_calls",
        )
    return tool_use_block(call.id, call.function.name, arguments)


def _text_block(text: str, index: int) -> TextContent:
    return text_block(text)


def _plain_text(content: str | list[TextPart]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content)
