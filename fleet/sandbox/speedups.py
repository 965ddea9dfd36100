"""Make moto cheaper per call, without changing what it answers.

- moto re-imports the same static RSA key for every user pool (~0.1 s of CPU each): import it once.
- moto lists its package directory on every request to route it: list it once.
- moto checks whether an account's backend exists with ``account_id in list(self.keys())`` under a global
  lock, on every backend access: O(accounts) per access, and hundreds of threads queued on that lock at a
  few thousand accounts. An O(1) check first; creating a backend still goes through moto's own code.
"""

from __future__ import annotations

from functools import cache
from typing import Any


def apply() -> None:
    import moto.backends
    import moto.cognitoidp.models as cognito_models
    import moto.moto_server.werkzeug_app as werkzeug_app

    _fast_account_lookup()
    modules = tuple(moto.backends.list_of_moto_modules())
    werkzeug_app.backends.list_of_moto_modules = lambda: modules  # type: ignore[attr-defined]

    real_jwk: Any = cognito_models.jwk  # type: ignore[attr-defined]
    if getattr(real_jwk, "_fleet_cached", False):
        return

    @cache
    def import_once(_: str) -> Any:
        from moto.utilities.utils import load_resource

        return real_jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))

    class _RSAKey:
        @staticmethod
        def import_key(data: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(data, dict) and data.get("kid") == _static_kid():
                return import_once("static")
            return real_jwk.RSAKey.import_key(data, *args, **kwargs)

    class _Jwk:
        _fleet_cached = True
        RSAKey = _RSAKey

        def __getattr__(self, name: str) -> Any:
            return getattr(real_jwk, name)

    cognito_models.jwk = _Jwk()  # type: ignore[attr-defined,assignment]


def _fast_account_lookup() -> None:
    from moto.core.base_backend import BackendDict

    create: Any = BackendDict._create_account_specific_backend
    if getattr(create, "_fleet_fast", False):
        return

    def create_if_missing(self: Any, account_id: str) -> None:
        if dict.__contains__(self, account_id):  # entries are never removed while the sandbox runs
            return
        create(self, account_id)

    create_if_missing._fleet_fast = True  # type: ignore[attr-defined]
    BackendDict._create_account_specific_backend = create_if_missing  # type: ignore[method-assign]


@cache
def _static_kid() -> Any:
    from moto.utilities.utils import load_resource

    return load_resource("cognitoidp/resources/jwks-private.json").get("kid")
