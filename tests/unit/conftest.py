"""The unit layer runs without the sandbox: a test here that asks for it fails and says where it belongs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sandbox() -> None:
    pytest.fail("a unit test runs without the sandbox: a test that needs it belongs in tests/e2e/")
