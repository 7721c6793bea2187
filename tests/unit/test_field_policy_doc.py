"""docs/field-policy.md lists exactly each API's field table (apis/<dialect>/fields.py).

The tables of the page are rendered from the code; after changing a table, write the page again with
`FIELD_POLICY_DOC_WRITE=1 .venv/bin/pytest tests/unit/test_field_policy_doc.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

from claude_code_api.answer.fields import IGNORED_FIELDS_HEADER, Policy, class_counts, table_rows
from claude_code_api.apis.anthropic_messages.fields import POLICY as MESSAGES
from claude_code_api.apis.openai_chat.fields import POLICY as CHAT
from claude_code_api.apis.openai_responses.fields import POLICY as RESPONSES

DOC = Path(__file__).resolve().parents[2] / "docs" / "field-policy.md"
POLICIES = (CHAT, RESPONSES, MESSAGES)
TABLES_START = "<!-- tables: rendered from apis/*/fields.py by tests/unit/test_field_policy_doc.py -->"


def render_tables(policies: tuple[Policy, ...]) -> str:
    sections = []
    for policy in policies:
        counts = class_counts(policy)
        lines = [
            f"## `{policy.name}`",
            "",
            f"{counts['mapped']} mapped, {counts['ignored']} ignored, {counts['refused']} refused.",
            "",
            "| Field | Class | Why |",
            "|---|---|---|",
        ]
        for row in table_rows(policy):
            kind = (
                row.kind
                if row.conditional is None
                else f"{row.kind} when {row.condition}, else {row.conditional}"
            )
            reason = row.reason.replace("|", "\\|")
            lines.append(f"| `{row.path}` | {kind} | {reason} |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def test_the_doc_lists_exactly_the_tables():
    text = DOC.read_text()
    intro, _, _ = text.partition(TABLES_START)
    expected = f"{intro}{TABLES_START}\n\n{render_tables(POLICIES)}"
    if os.environ.get("FIELD_POLICY_DOC_WRITE"):
        DOC.write_text(expected)
    assert text == expected, "docs/field-policy.md is out of date; see this module's docstring"


def test_the_doc_names_the_header_and_the_strict_setting():
    text = DOC.read_text()
    assert IGNORED_FIELDS_HEADER in text
    assert "STRICT_REQUEST_FIELDS" in text
