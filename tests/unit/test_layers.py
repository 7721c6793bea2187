"""The import rules import-linter cannot state (its contracts live in pyproject.toml): no import cycle
between modules, TYPE_CHECKING imports included, and only claude/ uses claude_agent_sdk's process side."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[2] / "src" / "claude_code_api"

# What the rest of the gateway may read of claude_agent_sdk: its messages and their content blocks.
SDK_MESSAGE_TYPES = frozenset(
    {
        "Message",
        "AssistantMessage",
        "UserMessage",
        "SystemMessage",
        "ResultMessage",
        "StreamEvent",
        "RateLimitEvent",
        "TextBlock",
        "ThinkingBlock",
        "ToolUseBlock",
        "ToolResultBlock",
    }
)


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("claude_code_api", exclude_type_checking_imports=False)
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph.modules):
        visit(module, [])
    assert cycles == []


def test_only_claude_package_uses_the_sdk_process_side() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if (SRC / "claude") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.split(".")[0] == "claude_agent_sdk"]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "claude_agent_sdk":
                names = [alias.name for alias in node.names if alias.name not in SDK_MESSAGE_TYPES]
                names = [f"{node.module}.{name}" for name in names]
            else:
                continue
            offenders += [f"{path.relative_to(SRC)}: {name}" for name in names]
    assert offenders == []
