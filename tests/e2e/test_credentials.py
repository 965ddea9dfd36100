"""Shared clients: every account's call is signed with that account's credentials, and only those."""

from __future__ import annotations

import anyio
import pytest

from fleet.aws.calls import Calls
from fleet.aws.credentials import AwsSettings, Hub, role_arn_for
from fleet.aws.limits import Limits
from fleet.aws.retry import BackoffPolicy


async def test_views_of_one_shared_client_sign_as_their_own_account(make_fleet) -> None:
    fleet = make_fleet(accounts=3, regions=("eu-west-1",), per_region=2)
    settings = AwsSettings(endpoint_url=fleet.box.endpoint)
    async with Hub(settings, Calls(Limits(None, 5.0), BackoffPolicy())) as hub:
        accounts = sorted({d.account_id for d in fleet.domains})
        sessions = {a: await hub.assume(a, role_arn_for(a, settings, None), None) for a in accounts}
        views = {a: await s.client("cognito-idp", "eu-west-1") for a, s in sessions.items()}
        assert len({id(v._client) for v in views.values()}) == 1  # one client behind every account

        seen: list[tuple[str, str, str]] = []

        async def describe(account: str, domain: str) -> None:
            out = await views[account].describe_user_pool_domain(Domain=domain)
            seen.append((account, domain, out["DomainDescription"].get("UserPoolId", "")))

        async with anyio.create_task_group() as tg:  # interleaved: 3 accounts x 2 domains x 10 rounds
            for _ in range(10):
                for d in fleet.domains:
                    tg.start_soon(describe, d.account_id, d.domain)
        pools = {d.domain: d.user_pool_id for d in fleet.domains}
        assert len(seen) == 60
        assert all(pool == pools[domain] for _, domain, pool in seen)

        # Another account's credentials do not see the domain (the sandbox, like AWS, scopes by account).
        a, b = accounts[0], accounts[1]
        foreign = next(d for d in fleet.domains if d.account_id == b)
        out = await views[a].describe_user_pool_domain(Domain=foreign.domain)
        assert out["DomainDescription"] == {}

        # Fail closed: the shared client itself, called outside a view, has no credentials to sign with.
        shared = await hub.shared_client("cognito-idp", "eu-west-1")
        with pytest.raises(RuntimeError, match="no account credentials"):
            await shared.describe_user_pool_domain(Domain=foreign.domain)
        with pytest.raises(AttributeError):
            views[a].get_paginator("list_user_pools")
    assume_calls = fleet.box.state.stats()["assume_role_calls"]
    assert sum(assume_calls.values()) == 3


# ---- the private botocore/aiobotocore APIs the shared clients rely on (pinned versions): fail loudly if moved ----
async def test_private_hooks_of_the_pinned_libraries_are_where_the_code_expects(make_fleet) -> None:
    fleet = make_fleet(accounts=1, regions=("eu-west-1",), per_region=1)
    settings = AwsSettings(endpoint_url=fleet.box.endpoint)
    async with Hub(settings, Calls(Limits(None, 5.0), BackoffPolicy())) as hub:
        plain = await hub.client("cognito-idp", "eu-west-1")
        # The signer reads its credentials from this attribute at every request: shared clients replace it.
        signer = plain._request_signer
        assert hasattr(signer, "_credentials") and hasattr(signer, "get_auth_instance")
        # The User-Agent rebuild is this handler, registered on request-created for the service.
        handler = plain._user_agent_creator.rebuild_and_replace_user_agent_handler
        event = "request-created.cognito-identity-provider"
        assert _registered(plain, event, handler)
        shared = await hub.shared_client("cognito-idp", "eu-west-1")
        assert type(shared._request_signer._credentials).__name__ == "_BoundCredentials"
        shared_handler = shared._user_agent_creator.rebuild_and_replace_user_agent_handler
        assert not _registered(shared, event, shared_handler)  # dropped: the header keeps its first build


def _registered(client, event: str, handler) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``handler`` would run for ``event`` on this client's emitter."""
    emitter = client.meta.events
    handlers = list(emitter._emitter._handlers.prefix_search(event)) if hasattr(emitter, "_emitter") else []
    return any(h == handler for h in handlers)
