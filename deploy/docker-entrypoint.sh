#!/bin/sh
# The image's entrypoint: before `claude-code-api serve`, writes a self-signed certificate for the admin
# site into DATA_DIR/certs unless one is there (or mounted), then replaces itself with the command, so
# that tini (PID 1) hands `docker stop`'s SIGTERM straight to the server.
set -eu

if [ "${1:-}" = "claude-code-api" ] && [ "${2:-}" = "serve" ]; then
    claude-code-api generate-certs --if-missing
fi

exec "$@"
