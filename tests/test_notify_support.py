"""Fakes for the notification tests: HTTP services on loopback that record what
Apprise sends them.

- :class:`FakeWebhook`: a generic JSON webhook (Apprise ``json://``); answers
  200, or the status a test sets.
- :class:`FakeTelegram`: the Bot API's ``/bot<token>/sendMessage`` (Apprise
  ``tgram://``). It checks what the real API checks first: the token in the
  path, a ``chat_id`` and a non-empty ``text``, and answers 401/400 like it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

from aitrapp.db import repo


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class _Recorder:
    received: list[Received] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server:
    handle: Callable[[BaseHTTPRequestHandler, Received], tuple[int, dict[str, Any]]]

    def __init__(self) -> None:
        self.rec = _Recorder()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                got = Received(self.path, dict(self.headers.items()), body)
                with server.rec.lock:
                    server.rec.received.append(got)
                status, answer = server.handle(self, got)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:  # keep pytest output clean
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._httpd.server_address[1])
        # shutdown() waits for the loop to look again: every 50 ms, not the default 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    @property
    def received(self) -> list[Received]:
        with self.rec.lock:
            return list(self.rec.received)

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[Received]:
        """At least ``n`` requests, or whatever arrived when the time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(self.received) < n:
            time.sleep(0.01)
        return self.received


class FakeWebhook(_Server):
    def handle(self, _h: BaseHTTPRequestHandler, _got: Received) -> tuple[int, dict[str, Any]]:
        return self.rec.status, {"ok": self.rec.status < 400}

    def set_status(self, status: int) -> None:
        self.rec.status = status

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"


class FakeTelegram(_Server):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def handle(self, _h: BaseHTTPRequestHandler, got: Received) -> tuple[int, dict[str, Any]]:
        if not got.path.startswith(f"/bot{self.token}/"):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if not got.path.endswith("/sendMessage"):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if not got.body.get("chat_id") or not str(got.body.get("text", "")).strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request"}
        message = {"message_id": len(self.received), "chat": {"id": got.body["chat_id"]}}
        return 200, {"ok": True, "result": {**message, "text": got.body["text"]}}

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [r.body for r in self.received if r.path.endswith("/sendMessage")]


async def journal_trade(
    pool: Any,
    session_id: UUID,
    n: int,
    closed_at: datetime,
    net: Decimal,
    *,
    exit_reason: str = "TP",
    risk: Decimal = Decimal("200.00"),
    charges: Decimal = Decimal("20.00"),
) -> None:
    """A closed trade with its signal and decision (the journal's foreign keys)."""
    plan = f"{n:024x}"
    sig = repo.SignalRow(
        session_id=session_id, ts=closed_at, instrument_token=738561, tradingsymbol="INFY",
        strategy="EmaCross", side="BUY", entry=Decimal("1500"), stop=Decimal("1480"),
        tp=Decimal("1540"), reason="cross",
    )  # fmt: skip
    dec = repo.DecisionRow(
        session_id=session_id, signal_id=sig.id, plan_id=plan, ts=closed_at,
        tradingsymbol="INFY", strategy="EmaCross", side="BUY", qty=10, entry=sig.entry,
        stop=sig.stop, tp=sig.tp, risk_rupees=risk, heat_after_pct=Decimal("0.2"),
        config_sha="c1", tick_to_decision_ms=0.004,
    )  # fmt: skip
    await repo.execute(pool, sig)
    await repo.execute(pool, dec)
    await repo.execute(
        pool,
        repo.TradeRow(
            session_id=session_id, decision_id=dec.id, plan_id=plan, strategy="EmaCross",
            exchange="NSE", tradingsymbol="INFY", side="BUY", qty=10,
            entry_price=Decimal("1500"), exit_price=Decimal("1501"), gross_pnl=net + charges,
            charges=charges, net_pnl=net, exit_reason=exit_reason, opened_at=closed_at,
            closed_at=closed_at,
        ),
    )  # fmt: skip
