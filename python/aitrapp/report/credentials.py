"""A ``verify_credentials`` callable for the LIVE gate, backed by Kite Connect.

Verified means: ``KITE_API_KEY``/``KITE_API_SECRET`` are set, the stored
access token (``KITE_TOKEN_FILE``) belongs to that api_key and has not
expired, and Kite answers ``GET /user/profile`` for the same user id with it.
Any shortfall is returned as a message (the gate's refusal reason), never
raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from aitrapp.exceptions import AitrappError
from aitrapp.kite.auth import ENV_API_ROOT, TokenStore, credentials_from_env
from aitrapp.kite.errors import KiteApiError, KiteTokenError
from aitrapp.report.live_gate import VerifyCredentials


def kite_verifier(
    *,
    env: Mapping[str, str] | None = None,
    token_file: Path | None = None,
    api_root: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> VerifyCredentials:
    source = os.environ if env is None else env

    async def verify() -> bool | str:
        from aitrapp.kite.client import KiteRest  # kiteconnect is heavy: only when asked

        try:
            creds = credentials_from_env(source)
            store = TokenStore(token_file) if token_file else TokenStore.from_env(source)
            session = store.load_valid(api_key=creds.api_key, now=clock())
        except AitrappError as exc:
            return str(exc)
        rest = KiteRest(
            creds.api_key, session.access_token, root=api_root or source.get(ENV_API_ROOT)
        )
        try:
            profile = await rest.profile()
        except KiteTokenError as exc:
            return f"Kite rejected the access token: {exc}; run `aitrapp kite login`"
        except KiteApiError as exc:
            return f"Kite profile check failed ({exc.error_type or 'network'}): {exc}"
        finally:
            rest.close()
        user = profile.get("user_id")
        if user != session.user_id:
            return f"Kite answered for user {user!r}, the token file is for {session.user_id!r}"
        return True

    return verify
