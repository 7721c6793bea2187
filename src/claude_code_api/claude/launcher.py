"""Starts the Claude Code CLI for the runner with only the environment the runner chose.

The SDK hands its child the whole server environment (where an ANTHROPIC_API_KEY would override the
key's OAuth token) and starts it so that it outlives a killed server. The runner therefore starts this
file, copied into its runtime directory, instead of the CLI; it keeps the allow-listed variables, asks
the kernel to kill the CLI when the server dies, records the CLI's pid and replaces itself with the CLI.
It imports nothing but the standard library because it runs as `python -I -S`.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1

CLI_VARIABLE = "CLAUDE_CODE_API_CLI"
ALLOWED_VARIABLE = "CLAUDE_CODE_API_ALLOWED_ENV"
PID_FILE_VARIABLE = "CLAUDE_CODE_API_PID_FILE"
PARENT_VARIABLE = "CLAUDE_CODE_API_PARENT_PID"
NICENESS_VARIABLE = "CLAUDE_CODE_API_NICENESS"


def main() -> None:
    cli = os.environ[CLI_VARIABLE]
    allowed = os.environ[ALLOWED_VARIABLE].split(",")
    environment = {name: os.environ[name] for name in allowed if name in os.environ}
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # Not Linux: the runner still ends its processes itself.
    if str(os.getppid()) != os.environ.get(PARENT_VARIABLE, str(os.getppid())):
        sys.exit(1)  # The server died before the kernel could be asked to watch it.
    niceness = os.environ.get(NICENESS_VARIABLE)
    if niceness:
        os.nice(int(niceness))  # a spare started ahead of need yields the CPU to answers
    pid_file = os.environ.get(PID_FILE_VARIABLE)
    if pid_file:
        with open(pid_file, "w") as handle:
            handle.write(str(os.getpid()))
    os.execve(cli, [cli, *sys.argv[1:]], environment)  # noqa: S606 - fixed executable, no shell


if __name__ == "__main__":
    main()
