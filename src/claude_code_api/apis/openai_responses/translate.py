"""OpenAI Responses requests (schemas.py) to Claude requests; pure.

Nothing is stored (see fields.py): a client sends the whole conversation as input items each time.
"""

from __future__ import annotations

from typing import Any

from claude_code_api.answer.blocks import (
    ContentBlock,
    ImageContent,
    TextContent,
    ToolResultContent,
    ToolUseContent,
    json_arguments,
    text_block,
    tool_use_block,
)
from claude_code_api.answer.images import image_block_from_url
from claude_code_api.answer.request import ClaudeRequest, ClaudeTurn, RequestOptions, claude_request
from claude_code_api.answer.tools import ClientTool, client_tool_list, tool_input_schema, tool_use_instruction
from claude_code_api.apis.openai_responses.schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionChoice,
    FunctionTool,
    InputImage,
    InputText,
    MessageItem,
    NamespaceTool,
    OutputText,
    Refusal,
    ResponsesRequest,
    TextConfig,
    TextFormatJsonObject,
    TextFormatText,
    Unsupported,
)
from claude_code_api.catalog import ModelChoice
from claude_code_api.errors import InvalidRequestError, UnsupportedParameterError


def translate_responses_request(
    request: ResponsesRequest, model: ModelChoice, fetch_image_urls: bool = False
) -> ClaudeRequest:
    """Turns a validated Responses request (after fields.py's table) into a Claude request."""
    system_parts = [request.instructions or ""]
    turns: list[ClaudeTurn] = []
    if isinstance(request.input, str):
        turns.append(ClaudeTurn("user", (_text(request.input, "input"),)))
    else:
        for index, item in enumerate(request.input):
            where = f"input[{index}]"
            if isinstance(item, MessageItem) and item.role in ("system", "developer"):
                system_parts.append(_instructions(item, where))
            elif isinstance(item, MessageItem):
                turns.append(ClaudeTurn(item.role, _message_content(item, where, fetch_image_urls)))  # type: ignore[arg-type]
            elif isinstance(item, FunctionCallItem):
                turns.append(ClaudeTurn("assistant", (_tool_use(item, where),)))
            elif isinstance(item, FunctionCallOutputItem):
                turns.append(ClaudeTurn("user", (_tool_result(item, where, fetch_image_urls),)))
            elif isinstance(item, Unsupported):
                raise _unsupported_item(item, where)
    tools = client_tools(request)
    system_parts.append(_tool_choice_instruction(request, tools))
    options = RequestOptions(
        max_output_tokens=request.max_output_tokens,
        effort=request.reasoning.effort if request.reasoning else None,
        output_schema=_output_schema(request.text),
    )
    return claude_request(model.claude_model, system_parts, turns, tools, options, param="input")


def _unsupported_item(item: Unsupported, where: str) -> UnsupportedParameterError:
    if item.type == "item_reference":
        return UnsupportedParameterError(
            where, "item references need stored responses; send the item itself."
        )
    return UnsupportedParameterError(where, f"input items of type '{item.type}' are not supported.")


def _instructions(item: MessageItem, where: str) -> str:
    if isinstance(item.content, str):
        return item.content
    texts = []
    for position, part in enumerate(item.content):
        if not isinstance(part, InputText):
            raise UnsupportedParameterError(
                f"{where}.content[{position}]", f"{item.role} messages take text only."
            )
        texts.append(part.text)
    return "\n".join(texts)


def _message_content(item: MessageItem, where: str, fetch: bool) -> tuple[ContentBlock, ...]:
    if isinstance(item.content, str):
        return (_text(item.content, f"{where}.content"),)
    return tuple(
        _part(part, f"{where}.content[{n}]", item.role, fetch) for n, part in enumerate(item.content)
    )


def _part(part: Any, where: str, role: str, fetch: bool) -> TextContent | ImageContent:
    user_kinds, assistant_kinds = (InputText, InputImage), (OutputText, Refusal, InputText)
    if isinstance(part, Unsupported):
        raise UnsupportedParameterError(where, f"content parts of type '{part.type}'.")
    if not isinstance(part, user_kinds if role == "user" else assistant_kinds):
        raise InvalidRequestError(
            f"{where}: a '{part.type}' part cannot appear in a {role} message.", param=where
        )
    if isinstance(part, InputImage):
        if part.image_url is None:
            raise UnsupportedParameterError(where, "images by file_id need the Files API; send image_url.")
        return image_block_from_url(part.image_url, where, fetch_allowed=fetch)
    if isinstance(part, Refusal):
        return _text(part.refusal, where)
    return _text(part.text, where)


def _tool_use(item: FunctionCallItem, where: str) -> ToolUseContent:
    arguments = json_arguments(item.arguments)
    if arguments is None:
        raise InvalidRequestError(
            f"{where}.arguments must be a JSON object (as a string).", param=f"{where}.arguments"
        )
    name = namespaced_name(item.namespace, item.name) if item.namespace else item.name
    return tool_use_block(item.call_id, name, arguments)


def _tool_result(item: FunctionCallOutputItem, where: str, fetch: bool) -> ToolResultContent:
    output = item.output
    content: str | list[TextContent | ImageContent]
    if isinstance(output, str):
        content = output
    else:
        content = [_part(part, f"{where}.output[{n}]", "user", fetch) for n, part in enumerate(output)]
    return {"type": "tool_result", "tool_use_id": item.call_id, "content": content}


def _text(text: str, where: str) -> TextContent:
    return text_block(text)


def client_tools(request: ResponsesRequest) -> tuple[ClientTool, ...]:
    """The functions Claude may call: none when `tool_choice` is "none"."""
    if not request.tools or request.tool_choice == "none":
        return ()
    tools: list[ClientTool] = []
    for index, tool in enumerate(request.tools):
        if isinstance(tool, Unsupported):
            raise UnsupportedParameterError(
                f"tools[{index}]", f"tools of type '{tool.type}' are not available; only function tools."
            )
        if isinstance(tool, NamespaceTool):
            tools += [_namespaced_tool(tool, function) for function in tool.tools]
        else:
            tools.append(_client_tool(tool.name, tool))
    return client_tool_list(tools)


# A namespace tool's functions reach Claude flattened, each as `<namespace>__<name>`.
NAMESPACE_SEPARATOR = "__"


def namespaced_name(namespace: str, name: str) -> str:
    """The name Claude knows a namespace tool's function by."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}"


def namespaced_functions(tools: list[Any]) -> dict[str, tuple[str, str]]:
    """Flattened names of namespace tools' functions (from the echoed `tools`) -> (namespace, name)."""
    return {
        namespaced_name(tool["name"], function["name"]): (tool["name"], function["name"])
        for tool in tools
        if tool.get("type") == "namespace"
        for function in tool.get("tools", ())
    }


def _client_tool(name: str, tool: FunctionTool, group: str = "") -> ClientTool:
    description = tool.description or tool.name
    return ClientTool(name, f"{group}{description}", tool_input_schema(tool.parameters))


def _namespaced_tool(namespace: NamespaceTool, function: FunctionTool) -> ClientTool:
    group = f"{namespace.description} " if namespace.description else ""
    return _client_tool(namespaced_name(namespace.name, function.name), function, group)


def _tool_choice_instruction(request: ResponsesRequest, tools: tuple[ClientTool, ...]) -> str:
    choice = request.tool_choice
    if isinstance(choice, Unsupported):
        raise UnsupportedParameterError(
            "tool_choice", f"'{choice.type}' is not available; use none, auto, required or a function."
        )
    return tool_use_instruction(
        tools,
        named=choice.name if isinstance(choice, FunctionChoice) else None,
        required=choice == "required",
        one_call=request.parallel_tool_calls is False,
    )


def _output_schema(text: TextConfig | None) -> dict[str, Any] | None:
    if text is None or text.format is None or isinstance(text.format, TextFormatText):
        return None
    if isinstance(text.format, TextFormatJsonObject):
        return {"type": "object"}
    return text.format.schema_
