"""Make moto cheaper per call, without changing what it answers.

- moto re-imports the same static RSA key for every user pool (~0.1 s of CPU each): import it once.
- moto lists its package directory on every request to route it: list it once.
"""

from __future__ import annotations

from functools import cache
from typing import Any


def apply() -> None:
    import moto.backends
    import moto.cognitoidp.models as cognito_models
    import moto.moto_server.werkzeug_app as werkzeug_app

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


@cache
def _static_kid() -> Any:
    from moto.utilities.utils import load_resource

    return load_resource("cognitoidp/resources/jwks-private.json").get("kid")
