"""Two `serve` processes on one PostgreSQL and one Redis behave as one gateway."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from claude_code_api.store.database import Database
from claude_code_api.store.usage import UsageStore
from tests.factories import make_oauth_token
from tests.integration.conftest import (
    create_postgres_database,
    drop_postgres_database,
    flush_redis_prefix,
    postgres_database_url,
)
from tests.integration.mock_anthropic import MockAnthropic
from tests.integration.serve_harness import (
    Served,
    claude_processes_under,
    create_key,
    run_cli,
    serve_environment,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ADMIN_PASSWORD = "a-test-password"


@pytest.fixture(scope="module")
def shared_database(postgres_server: str) -> Iterator[str]:
    """One PostgreSQL database for the module's pair of instances."""
    name = asyncio.run(create_postgres_database(postgres_server))
    try:
        yield postgres_database_url(name)
    finally:
        asyncio.run(drop_postgres_database(postgres_server, name))


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    mock_anthropic_server: MockAnthropic,
    shared_database: str,
    redis_server: str,
) -> Iterator[tuple[Served, Served]]:
    """Two instances started at the same moment on one empty database, one Redis and one secret."""
    shared = {
        "DATABASE_URL": shared_database,
        "REDIS_URL": redis_server,
        "REDIS_KEY_PREFIX": f"test-{secrets.token_hex(6)}",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    root = tmp_path_factory.mktemp("scale-out")
    envs = [serve_environment(root / name, mock_anthropic_server.url, **shared) for name in ("a", "b")]
    for env in envs:
        assert run_cli(env, "generate-certs").returncode == 0
    # Started together on an empty database: their migrations must not collide.
    servers = [Served(env) for env in envs]
    try:
        for server in servers:
            server.wait_healthy()
        yield servers[0], servers[1]
    finally:
        codes = [server.stop() for server in servers]
        flush_redis_prefix(redis_server, shared["REDIS_KEY_PREFIX"])
    assert codes == [0, 0]
    for server in servers:
        assert not claude_processes_under(server.run_dir)


def _ask(server: Served, key: str, text: str) -> str | None:
    with openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0) as client:
        answer = client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content


def test_a_key_made_on_one_instance_works_on_both_and_their_usage_adds_up(
    pair: tuple[Served, Served], shared_database: str
) -> None:
    first, second = pair
    key = create_key(first.env, "shared", make_oauth_token())

    answers = [_ask(server, key, f"turn {n}") for n, server in enumerate([first, second, first, second])]

    assert answers == [f"Echo: turn {n}" for n in range(4)]

    async def requests_recorded() -> int:
        database = Database.from_url(shared_database)
        try:
            totals = await UsageStore(database).totals_by_key()
        finally:
            await database.dispose()
        return sum(total.requests for total in totals.values())

    deadline = time.monotonic() + 5
    while asyncio.run(requests_recorded()) < 4:
        assert time.monotonic() < deadline, "usage from both instances did not add up"
        time.sleep(0.1)


def test_a_key_revoked_on_one_instance_is_refused_by_the_other_within_a_second(
    pair: tuple[Served, Served],
) -> None:
    first, second = pair
    key = create_key(first.env, "soon revoked", make_oauth_token())
    assert _ask(second, key, "before") == "Echo: before"
    admin = httpx.Client(verify=False, headers={"authorization": f"Bearer {ADMIN_PASSWORD}"})

    revoked = admin.delete(f"{first.admin_url}/admin/keys/{key}")
    revoked_at = time.monotonic()
    admin.close()

    assert revoked.status_code == 200
    # Instances cache a key for at most a second: any request sent after that must be refused.
    time.sleep(max(0.0, revoked_at + 1.0 - time.monotonic()))
    with pytest.raises(openai.AuthenticationError):
        _ask(second, key, "after")


def test_a_requests_per_minute_limit_holds_across_both_instances(pair: tuple[Served, Served]) -> None:
    first, second = pair
    key = create_key(first.env, "limited", make_oauth_token(), "--rpm", "3")

    for n, server in enumerate([first, second, first]):
        assert _ask(server, key, f"within {n}") == f"Echo: within {n}"
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(second, key, "one too many")

    assert int(refused.value.response.headers["retry-after"]) >= 1


def test_an_admin_session_works_on_whichever_instance_the_proxy_picks(pair: tuple[Served, Served]) -> None:
    first, second = pair
    with httpx.Client(verify=False) as browser:
        form = browser.get(f"{first.admin_url}/login")
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        browser.post(
            f"{first.admin_url}/login",
            data={"password": ADMIN_PASSWORD, "csrf_token": token, "next": "/admin"},
            headers={"origin": first.admin_url},
        )

        # Cookies do not depend on the port: the same browser now asks the other instance.
        dashboard = browser.get(f"{second.admin_url}/admin", follow_redirects=False)

    assert dashboard.status_code == 200
    assert "Sign out" in dashboard.text  # the signed-in dashboard, not the login form
