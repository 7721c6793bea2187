"""The Gateway: the services every route uses (store, key limits, usage, admin sessions, the Claude
runner), opened once per process and closed on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from claude_code_api.claude.routing import CredentialHealth, CredentialReport, CredentialRouter
from claude_code_api.claude.runner import ClaudeRunner
from claude_code_api.config import Settings
from claude_code_api.errors import GatewayError, ModelTableError, UpstreamAuthenticationError, UsageLimitError
from claude_code_api.model_table import BUILT_IN_MODELS, ModelTable, parse_model_table
from claude_code_api.security.encryption import TokenCipher
from claude_code_api.security.ratelimit import KeyLimiter, open_backend
from claude_code_api.store.credentials import CredentialStore
from claude_code_api.store.database import Database
from claude_code_api.store.keys import KEY_CACHE_SECONDS, KeyStore
from claude_code_api.store.sessions import SessionStore
from claude_code_api.store.usage import UsageRecord, UsageStore
from claude_code_api.store.verifier import SecretState, open_secret, secret_state

logger = logging.getLogger(__name__)

# How often the credential states other instances recorded are read: an exhausted credential is skipped
# by every instance within about this long.
STATE_FOLLOW_SECONDS = 0.5

# Usage records wait this long, then go to the store together with every record that came meanwhile:
# one transaction per batch (and one update of each key's last use) instead of two per request.
USAGE_WRITE_DELAY_SECONDS = 0.25


@dataclass
class Gateway:
    """The services every route uses, opened once per process."""

    settings: Settings
    database: Database
    keys: KeyStore
    usage: UsageStore
    runner: ClaudeRunner
    limiter: KeyLimiter
    sessions: SessionStore
    secret: bytes = field(default=b"", repr=False)
    # The upstream model ids of each credential kind: the operator's table over the built-in one.
    models: ModelTable = BUILT_IN_MODELS
    _pending_writes: set[asyncio.Task[None]] = field(default_factory=set)
    _token_ok_written: dict[str, float] = field(default_factory=dict)
    _following: asyncio.Task[None] | None = None
    _stop_following: asyncio.Event = field(default_factory=asyncio.Event)
    # The credential names the store held at the last reading (None before it): renamed and removed
    # ones leave the router's view, but not what the dashboard, health and metrics show.
    _stored_names: set[str] | None = None
    _usage_queue: list[UsageRecord] = field(default_factory=list)
    _usage_writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings) -> Gateway:
        """Reads the model table, connects the store (running migrations) and prepares the runner."""
        models = load_model_table(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = Database.from_url(settings.resolved_database_url)
        await database.upgrade()
        try:
            secret = await open_secret(database, settings.data_dir, settings.secret_key)
        except BaseException:
            await database.dispose()
            raise
        keys = KeyStore(database, TokenCipher(secret), cache_seconds=KEY_CACHE_SECONDS)
        usage = UsageStore(database)
        try:
            backend = await open_backend(settings.redis_url, settings.redis_key_prefix)
        except BaseException:
            await database.dispose()
            raise
        credentials = keys.credentials
        router = CredentialRouter(publish=partial(_publish_state, credentials))
        runner = ClaudeRunner(settings, router)
        runner.start()
        limiter = KeyLimiter(backend, usage.cost_since)
        gateway = cls(
            settings,
            database,
            keys,
            usage,
            runner,
            limiter,
            SessionStore(database),
            secret=secret,
            models=models,
        )
        gateway._following = asyncio.create_task(
            _follow_states(credentials, router, gateway._note_names, gateway._stop_following)
        )
        return gateway

    async def secret_state(self) -> SecretState:
        """Whether the secret in force is still the store's and still the one on disk (for health)."""
        cipher = TokenCipher(self.secret)
        return await secret_state(
            self.database, cipher, self.secret, self.settings.data_dir, self.settings.secret_key
        )

    def credential_reports(self) -> dict[str, CredentialReport]:
        """Each stored credential as this instance's router sees it: state, quota and counters."""
        reports = self.runner.router.snapshot()
        if self._stored_names is None:
            return reports
        return {name: report for name, report in reports.items() if name in self._stored_names}

    def _note_names(self, names: set[str]) -> None:
        self._stored_names = names

    def record_usage(self, record: UsageRecord) -> None:
        """Stores a request's usage in the background, off the request's path."""
        self.limiter.record_spend(record.key_id, record.cost_usd, record.created_at)
        self._usage_queue.append(record)
        if self._usage_writer is None or self._usage_writer.done():
            self._usage_writer = self._spawn_write(self._write_usage())

    def _spawn_write(self, write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(_logged(write))
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)
        return task

    def note_token_outcome(self, key_id: str, error: GatewayError | None) -> None:
        """Records how the key's OAuth token fared upstream, for `keys list`, the dashboard and doctor.

        A success is written at most once a minute per key: it only moves a date forward.
        """
        kind = token_problem(error)
        now = time.monotonic()
        if kind is None:
            if error is not None or now - self._token_ok_written.get(key_id, -math.inf) < 60:
                return
            self._token_ok_written[key_id] = now
            self._spawn_write(self.keys.record_upstream_result(key_id, ok=True))
            return
        self._token_ok_written.pop(key_id, None)
        assert error is not None
        self._spawn_write(
            self.keys.record_upstream_result(key_id, ok=False, error=f"{kind}: {error.message}")
        )

    async def _write_usage(self) -> None:
        """Writes the queued usage records in batches until none is left."""
        await asyncio.sleep(USAGE_WRITE_DELAY_SECONDS)
        while self._usage_queue:
            records, self._usage_queue = self._usage_queue, []
            last_used: dict[str, datetime] = {}
            for record in records:
                last_used[record.key_id] = max(
                    record.created_at, last_used.get(record.key_id, record.created_at)
                )
            try:
                await self.usage.record_many(records)
                for key_id, when in last_used.items():
                    await self.keys.mark_used(key_id, when)
            except Exception:
                logger.exception("A background write of %d usage records to the store failed", len(records))

    async def aclose(self) -> None:
        """Ends every Claude process, finishes pending usage writes, then closes the store."""
        if self._following is not None:
            # Asked to stop rather than cancelled: a store query cut off mid-way would finish in its
            # driver's thread after the event loop is gone.
            self._stop_following.set()
            await self._following
        await self.runner.aclose()
        if self._pending_writes:
            await asyncio.wait(self._pending_writes, timeout=5)
        await self.limiter.aclose()
        await self.database.dispose()


def load_model_table(settings: Settings) -> ModelTable:
    """The operator's model table (MODEL_TABLE, else DATA_DIR/models.toml when there is one) over the
    built-in ids; raises ModelTableError, one line, when it cannot be read or is malformed."""
    path = settings.resolved_model_table
    if settings.model_table is None and not path.exists():
        return BUILT_IN_MODELS
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ModelTableError(f"The model table {path} cannot be read: {reason}") from None
    table = parse_model_table(text, str(path))
    names = sum(len(entries) for entries in table.operator.values())
    logger.info("Model table %s: %d model name(s) over the built-in ids", path, names)
    return table


async def _logged(write: Coroutine[Any, Any, None]) -> None:
    try:
        await write
    except Exception:
        logger.exception("A background write to the store failed")


def token_problem(error: GatewayError | None) -> str | None:
    """What an error says about the key's OAuth token: rejected, at its usage limit, or nothing."""
    if isinstance(error, UpstreamAuthenticationError):
        return "rejected"
    if isinstance(error, UsageLimitError):
        return "usage limit"
    return None


async def _publish_state(credentials: CredentialStore, name: str, health: CredentialHealth) -> None:
    """Records a credential's new state in the store, where every instance reads it."""
    until = None if health.until is None else datetime.fromtimestamp(health.until, UTC)
    await credentials.set_state(name, health.state, reason=health.reason, until=until)


async def _follow_states(
    credentials: CredentialStore,
    router: CredentialRouter,
    note_names: Callable[[set[str]], None],
    stop: asyncio.Event,
) -> None:
    """Keeps the router's credential states those the store holds, as other instances record them,
    until `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATE_FOLLOW_SECONDS)
            return
        try:
            known = await credentials.list_credentials()
        except Exception:
            logger.warning("Credential states could not be read from the store", exc_info=True)
            continue
        note_names({credential.name for credential in known})
        router.adopt(
            {
                credential.name: CredentialHealth(
                    credential.state.state,
                    None if credential.state.until is None else credential.state.until.timestamp(),
                    credential.state.reason,
                )
                for credential in known
            }
        )
