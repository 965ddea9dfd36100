"""The sandbox's knobs take all the values given or none, each checked against its type first."""

from __future__ import annotations

import pytest

from fleet.sandbox.state import SandboxState


@pytest.mark.parametrize(
    "values",
    [
        {"outage_seconds": "3"},  # a string where a number goes once broke every later connection
        {"latency": 0.2, "outage_seconds": "abc"},  # the good one is not applied either
        {"enforce_iam": "no"},
        {"deny_accounts": "111122223333"},
        {"seed": 1.5},
        {"external_ids": ["x"]},
        {"no_such_knob": 1},
    ],
)
def test_a_bad_value_is_refused_and_nothing_changes(values: dict[str, object]) -> None:
    state = SandboxState(clock=lambda: 100.0)
    before = dict(vars(state.knobs))
    with pytest.raises((ValueError, KeyError)):
        state.configure(**values)
    assert dict(vars(state.knobs)) == before and not state.in_outage()


def test_good_values_are_taken_as_their_types() -> None:
    state = SandboxState(clock=lambda: 100.0)
    state.configure(outage_seconds=3, deny_accounts=["111122223333"], credential_lifetime=None, enforce_iam=False)
    assert state.in_outage() and state.knobs.deny_accounts == {"111122223333"}
    assert state.knobs.credential_lifetime is None and state.knobs.enforce_iam is False
