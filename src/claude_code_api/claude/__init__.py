"""The only package that starts Claude Code: its processes, their environment and what they read."""
