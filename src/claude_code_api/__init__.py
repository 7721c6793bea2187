"""claude-code-api: an OpenAI-compatible gateway in front of Claude Code."""

__version__ = "0.1.0"
