"""`python -m claude_code_api` runs the command-line interface."""

from claude_code_api.cli import main

main()
