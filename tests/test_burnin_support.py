"""Shared builders for the report, burn-in and LIVE-gate tests (no tests of its own).

A :class:`SessionBuilder` writes a session into a real, migrated database the
way the session runner does: through the repo's rows and guarded updates
(NEW order first, then broker updates into ``order_events`` and the order's
status). :func:`passing_session` builds a session that meets every burn-in
criterion, with five hand-computable trades:

    closed IST  symbol    side  qty  entry  exit   gross    charges  net      equity
    10:00       RELIANCE  BUY   10   2500   2520    200.00   25.50   174.50   174.50
    11:00       INFY      SELL  20   1500   1510   -200.00   30.25  -230.25   -55.75
    12:00       TCS       BUY    5   3000   3040    200.00   20.00   180.00   124.25
    13:00       SBIN      BUY  100    800    804    400.00  100.00   300.00   424.25
    14:00       HDFCBANK  SELL  50   1600   1608   -400.00   25.00  -425.00    -0.75

    gross 200.00, charges 200.75, net -0.75; wins 3 of 5 (60 %);
    drawdowns: 174.50 -> -55.75 = 230.25, then 424.25 -> -0.75 = 425.00 (the max).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from aitrapp import broker_tag, order_client_id
from aitrapp.db import repo
from aitrapp.db.pool import Pool
from aitrapp.db.repo import (
    AuditRow,
    DecisionRow,
    FillRow,
    OrderEventRow,
    OrderRow,
    OrderStatusUpdate,
    PositionClose,
    PositionRow,
    RiskEventRow,
    SessionEnd,
    SessionRow,
    SignalRow,
    TradeRow,
)

DAY = date(2026, 1, 5)  # a Monday
OPEN_UTC = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)  # 09:15 IST
ACK_MS = 50  # decision -> broker ack in these fixtures
TICK_MS = (0.5, 1.0, 2.0, 4.0, 20.0)  # tick_to_decision_ms of the five decisions


def ist(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    """An IST wall time on ``day`` as an aware UTC datetime."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) - timedelta(
        hours=5, minutes=30
    )


@dataclass(frozen=True)
class TradeSpec:
    symbol: str
    side: Literal["BUY", "SELL"]
    qty: int
    entry: str
    exit: str
    gross: str
    charges: str
    closed_hour: int
    leg: Literal["TP", "STOP"]

    @property
    def net(self) -> Decimal:
        return Decimal(self.gross) - Decimal(self.charges)


TRADES = (
    TradeSpec("RELIANCE", "BUY", 10, "2500", "2520", "200.00", "25.50", 10, "TP"),
    TradeSpec("INFY", "SELL", 20, "1500", "1510", "-200.00", "30.25", 11, "STOP"),
    TradeSpec("TCS", "BUY", 5, "3000", "3040", "200.00", "20.00", 12, "TP"),
    TradeSpec("SBIN", "BUY", 100, "800", "804", "400.00", "100.00", 13, "TP"),
    TradeSpec("HDFCBANK", "SELL", 50, "1600", "1608", "-400.00", "25.00", 14, "STOP"),
)


@dataclass
class Bracket:
    plan_id: str
    signal: SignalRow
    decision: DecisionRow
    orders: dict[str, OrderRow] = field(default_factory=dict)  # role -> row
    trade: TradeRow | None = None


@dataclass
class SessionBuilder:
    pool: Pool
    session: SessionRow
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    async def start(
        cls,
        pool: Pool,
        *,
        day: date = DAY,
        mode: Literal["PAPER", "LIVE"] = "PAPER",
        feed: Literal["synthetic", "replay", "kite"] = "kite",
        started_at: datetime | None = None,
    ) -> SessionBuilder:
        row = SessionRow(
            trading_date=day,
            mode=mode,
            feed=feed,
            started_at=started_at or ist(9, 0, day),
            config_sha="cfg1",
        )
        assert await repo.create_session(pool, row)
        return cls(pool, row)

    @property
    def id(self) -> UUID:
        return self.session.id

    @property
    def day(self) -> date:
        return self.session.trading_date

    def _n(self) -> int:
        return next(self._seq)

    def plan_id(self) -> str:
        # Like plan_client_id: a hash, so the 16-char broker tag prefix differs per plan.
        return hashlib.sha1(f"{self.session.id}:{self._n()}".encode()).hexdigest()[:24]

    async def signals(self, n: int, strategy: str = "EmaCross", hour: int = 9) -> list[SignalRow]:
        out = []
        for i in range(n):
            sig = SignalRow(
                session_id=self.id,
                ts=ist(hour, 20, self.day) + timedelta(seconds=i),
                instrument_token=1000 + i % 7,
                tradingsymbol=f"SYM{i % 7}",
                strategy=strategy,
                side="BUY" if i % 2 else "SELL",
                entry=Decimal("100.00"),
                stop=Decimal("99.00"),
                tp=Decimal("101.00"),
            )
            await repo.execute(self.pool, sig)
            out.append(sig)
        return out

    async def risk_blocks(self, reason: str, n: int) -> None:
        for i in range(n):
            await repo.execute(
                self.pool,
                RiskEventRow(
                    session_id=self.id,
                    ts=ist(10, 0, self.day) + timedelta(seconds=i),
                    reason=reason,
                    details={"n": i},
                ),
            )

    async def decision(
        self,
        *,
        symbol: str,
        side: Literal["BUY", "SELL"],
        qty: int,
        entry: str,
        ts: datetime,
        strategy: str = "EmaCross",
        tick_ms: float | None = 1.0,
        plan_id: str | None = None,
    ) -> tuple[SignalRow, DecisionRow]:
        e = Decimal(entry)
        stop, tp = (e * Decimal("0.99"), e * Decimal("1.02"))
        if side == "SELL":
            stop, tp = tp, stop
        sig = SignalRow(
            session_id=self.id,
            ts=ts,
            instrument_token=1 + sum(map(ord, symbol)),
            tradingsymbol=symbol,
            strategy=strategy,
            side=side,
            entry=e,
            stop=stop,
            tp=tp,
        )
        await repo.execute(self.pool, sig)
        dec = DecisionRow(
            session_id=self.id,
            signal_id=sig.id,
            plan_id=plan_id or self.plan_id(),
            ts=ts,
            tradingsymbol=symbol,
            strategy=strategy,
            side=side,
            qty=qty,
            entry=e,
            stop=stop,
            tp=tp,
            risk_rupees=Decimal("100"),
            heat_after_pct=Decimal("0.1"),
            config_sha="cfg1",
            tick_to_decision_ms=tick_ms,
        )
        await repo.execute(self.pool, dec)
        return sig, dec

    async def order(
        self,
        plan_id: str,
        role: str,
        *,
        side: Literal["BUY", "SELL"],
        qty: int,
        at: datetime,
        status: str,
        filled: int = 0,
        price: str | None = None,
        symbol: str = "SYM",
        broker_ids: tuple[str, ...] | None = None,
        tag: str | None = None,
        client_order_id: str | None = None,
    ) -> OrderRow:
        """Write the NEW order, the broker's ack(s), then its final status.

        ``broker_ids``: the broker order ids the updates carry (two ids for
        one client id is the signature of an order placed twice).
        """
        cid = client_order_id or order_client_id(role, plan_id)
        bids = broker_ids or (f"26010{self._n():010d}",)
        row = OrderRow(
            session_id=self.id,
            client_order_id=cid,
            plan_id=plan_id,
            tag=tag or broker_tag(cid),
            role=role,
            exchange="NSE",
            tradingsymbol=symbol,
            instrument_token=1,
            side=side,
            order_type="MARKET" if role in ("ENTRY", "EXIT") else "LIMIT",
            product="MIS",
            qty=qty,
            created_at=at,
            updated_at=at,
            price=Decimal(price) if price and role == "TP" else None,
        )
        assert await repo.insert_order_new(self.pool, row), cid
        ack = "TRIGGER PENDING" if role == "STOP" else "OPEN"
        for i, bid in enumerate(bids):
            await repo.execute(
                self.pool,
                OrderEventRow(
                    client_order_id=cid,
                    broker_order_id=bid,
                    ts=at + timedelta(milliseconds=ACK_MS + i),
                    status=ack,
                    pending_qty=qty,
                ),
            )
        avg = Decimal(price) if filled and price else None
        final_ts = at + timedelta(seconds=1)
        if status != ack or filled:
            await repo.execute(
                self.pool,
                OrderEventRow(
                    client_order_id=cid,
                    broker_order_id=bids[0],
                    ts=final_ts,
                    status=status,
                    filled_qty=filled,
                    pending_qty=0 if status in repo.TERMINAL_STATUSES else qty - filled,
                    avg_price=avg,
                ),
            )
        update = OrderStatusUpdate(
            client_order_id=cid,
            status=status,
            filled_qty=filled,
            avg_price=avg,
            broker_order_id=bids[0],
            status_message=None,
            ts=final_ts,
        )
        await repo.update_order_status(self.pool, update)
        if avg is not None:  # the fill the order watcher records with the status
            await repo.insert_fill(
                self.pool,
                FillRow(
                    fill_scope=f"paper:{self.id}",
                    broker_fill_key=f"{bids[0]}:{filled}",
                    qty=filled,
                    price=avg,
                    ts=final_ts,
                    client_order_id=cid,
                    broker_order_id=bids[0],
                ),
            )
        got = await repo.get_order(self.pool, cid)
        assert got is not None and got.status == status, (cid, got)
        return got

    async def bracket(
        self,
        spec: TradeSpec,
        *,
        tick_ms: float | None = 1.0,
        sibling_status: str = "CANCELLED",
        with_trade: bool = True,
    ) -> Bracket:
        """A full OCO lifecycle: ENTRY filled, the ``spec.leg`` filled, its sibling
        ``sibling_status``, a position opened and closed, and the trade."""
        opened = ist(spec.closed_hour - 1, 0, self.day)
        closed = ist(spec.closed_hour, 0, self.day)
        sig, dec = await self.decision(
            symbol=spec.symbol,
            side=spec.side,
            qty=spec.qty,
            entry=spec.entry,
            ts=opened,
            tick_ms=tick_ms,
        )
        b = Bracket(dec.plan_id, sig, dec)
        exit_side: Literal["BUY", "SELL"] = "SELL" if spec.side == "BUY" else "BUY"
        b.orders["ENTRY"] = await self.order(
            dec.plan_id, "ENTRY", side=spec.side, qty=spec.qty, at=opened,
            status="COMPLETE", filled=spec.qty, price=spec.entry, symbol=spec.symbol,
        )  # fmt: skip
        sibling = "STOP" if spec.leg == "TP" else "TP"
        b.orders[spec.leg] = await self.order(
            dec.plan_id, spec.leg, side=exit_side, qty=spec.qty,
            at=opened + timedelta(seconds=2), status="COMPLETE", filled=spec.qty,
            price=spec.exit, symbol=spec.symbol,
        )  # fmt: skip
        b.orders[sibling] = await self.order(
            dec.plan_id, sibling, side=exit_side, qty=spec.qty,
            at=opened + timedelta(seconds=2), status=sibling_status,
            filled=spec.qty if sibling_status == "COMPLETE" else 0,
            price=spec.exit, symbol=spec.symbol,
        )  # fmt: skip
        await repo.execute(
            self.pool,
            PositionRow(
                session_id=self.id, plan_id=dec.plan_id, instrument_token=1, exchange="NSE",
                tradingsymbol=spec.symbol, side=spec.side, qty=spec.qty,
                avg_entry=Decimal(spec.entry), opened_at=opened, updated_at=opened,
            ),
        )  # fmt: skip
        await repo.execute(
            self.pool,
            PositionClose(plan_id=dec.plan_id, closed_at=closed, exit_price=Decimal(spec.exit)),
        )
        if with_trade:
            b.trade = await self.trade(b, spec, opened=opened, closed=closed)
        return b

    async def trade(
        self,
        b: Bracket,
        spec: TradeSpec,
        *,
        opened: datetime,
        closed: datetime,
        decision_id: UUID | None = None,
        plan_id: str | None = None,
    ) -> TradeRow:
        row = TradeRow(
            session_id=self.id,
            decision_id=decision_id or b.decision.id,
            plan_id=plan_id or b.plan_id,
            strategy=b.decision.strategy,
            exchange="NSE",
            tradingsymbol=spec.symbol,
            side=spec.side,
            qty=spec.qty,
            entry_price=Decimal(spec.entry),
            exit_price=Decimal(spec.exit),
            gross_pnl=Decimal(spec.gross),
            charges=Decimal(spec.charges),
            net_pnl=spec.net,
            exit_reason=spec.leg,
            opened_at=opened,
            closed_at=closed,
        )
        assert await repo.execute(self.pool, row)
        return row

    async def flatten(
        self, elapsed_ms: object = 150, ok: object = True, *, in_summary: bool = False
    ) -> dict[str, Any]:
        """The flatten drill near the end: an audit entry (or only a summary block)."""
        result = {"elapsed_ms": elapsed_ms, "ok": ok}
        if not in_summary:
            await repo.execute(
                self.pool,
                AuditRow(
                    ts=ist(15, 10, self.day),
                    actor="session",
                    action="flatten",
                    session_id=self.id,
                    params={"drill": True},
                    result=result,
                ),
            )
        return result

    async def end(
        self, status: Literal["COMPLETED", "ABORTED", "FAILED"] = "COMPLETED", **summary: Any
    ) -> None:
        assert await repo.end_session(
            self.pool,
            SessionEnd(
                session_id=self.id, ended_at=ist(15, 30, self.day), status=status, summary=summary
            ),
        )


async def passing_session(
    pool: Pool,
    *,
    day: date = DAY,
    mode: Literal["PAPER", "LIVE"] = "PAPER",
    feed: Literal["synthetic", "replay", "kite"] = "kite",
    signals: int = 55,
    trades: tuple[TradeSpec, ...] = TRADES,
    flatten_ms: float = 150,
    end: bool = True,
    **summary: Any,
) -> tuple[SessionBuilder, list[Bracket]]:
    """A session meeting every burn-in criterion (five brackets, each a full OCO
    lifecycle with its trade, 55 + 5 signals, a 150 ms flatten drill)."""
    s = await SessionBuilder.start(pool, day=day, mode=mode, feed=feed)
    await s.signals(signals)
    await s.risk_blocks("PORTFOLIO_HEAT", 3)
    await s.risk_blocks("COOLDOWN", 7)
    # Inserted out of close-time order: the report must sort by closed_at.
    order = [4, 0, 2, 1, 3] if len(trades) == 5 else list(range(len(trades)))
    brackets: list[Bracket] = [None] * len(trades)  # type: ignore[list-item]
    for i in order:
        brackets[i] = await s.bracket(trades[i], tick_ms=TICK_MS[i % len(TICK_MS)])
    await s.flatten(flatten_ms)
    if end:
        await s.end(**summary)
    return s, brackets
