"""The writer's bulk lane: rows staged with binary COPY and moved into the
journal tables by set-based statements, all in one transaction.

A :class:`BulkWrite` holds plain tuples per :class:`Stage` (no object per
row). A stage is a temp table (``ON COMMIT DELETE ROWS``: empty outside its
transaction) plus the statements that move its rows on, with the promises of
the row writes in :mod:`aitrapp.db.repo`:

- append-only rows get deterministic ids (md5 of the session and the event's
  key, :func:`bulk_id`) and insert with ``ON CONFLICT ... DO NOTHING``, so a
  batch applied twice (a lost acknowledgement, a spill replayed) lands once;
- guarded updates keep their guards (an order's status never leaves a terminal
  state, its filled quantity never shrinks) and their order: the updates of one
  order in a batch are folded (in ``seq`` order) into the one change that
  applying them one by one would make, so an order gets one new row version
  per transaction, not one per update.

Several bulk writes may be merged into one transaction (:meth:`BulkWrite.merge`):
stages apply in their fixed order (parents first) and rows within a stage in
the order they were submitted, so each batch still lands whole.

Exchange times travel as integer nanoseconds and become ``timestamptz`` as
the row writers' ``datetime.fromtimestamp(ns / 1e9)`` does; prices travel as
integer paise and become exact ``numeric`` rupees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import asyncpg

from aitrapp.db import bulk_direct
from aitrapp.db.pool import Connection, json_dumps

Record = tuple[Any, ...]

_TERMINAL = "('COMPLETE', 'CANCELLED', 'REJECTED')"


def _ts(col: str) -> str:
    """Integer nanoseconds since the epoch -> timestamptz, to the microsecond exactly
    as Python's ``datetime.fromtimestamp(ns / 1e9)`` gets it (so rows written in
    bulk and by the row writers agree): the same IEEE double, its fraction of a
    second in microseconds rounded half to even (``round(float8)`` is ``rint``)."""
    d = f"({col}::float8 / 1e9::float8)"
    usec = f"(trunc({d}) * 1e6::float8 + round(({d} - trunc({d})) * 1e6::float8))"
    return f"(timestamptz 'epoch' + {usec} * interval '1 microsecond')"


def _rupees(col: str, *, nullable: bool = False) -> str:
    """Integer paise -> exact rupees (0 means absent where ``nullable``)."""
    return f"(NULLIF({col}, 0) * 0.01)" if nullable else f"({col} * 0.01)"


def _id(kind: str, key: str, scope: str = "session_id::text") -> str:
    """The SQL twin of :func:`bulk_id`."""
    return f"md5({scope} || ':{kind}:' || {key})::uuid"


def bulk_id(scope: UUID | str, kind: str, key: object) -> UUID:
    """The id a bulk row gets: md5 of ``<scope>:<kind>:<key>`` (as the SQL computes it)."""
    return UUID(hashlib.md5(f"{scope}:{kind}:{key}".encode()).hexdigest())


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """``"name type, name type"`` -> ((name, type), ...)."""
    return tuple((n, t) for n, _, t in (c.strip().partition(" ") for c in spec.split(",")))


@dataclass(frozen=True, slots=True)
class Stage:
    """A temp table fed by COPY and the statements that move its rows on."""

    table: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type), in record order
    statements: tuple[str, ...]
    # (staged value, parent table, parent column): the foreign keys of the rows
    # the statements write, checked set-based when per-row checks are off.
    references: tuple[tuple[str, str, str], ...] = ()
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(n for n, _ in self.columns))

    @property
    def create_sql(self) -> str:
        cols = ", ".join(f"{n} {t}" for n, t in self.columns)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.table} ({cols}) ON COMMIT DELETE ROWS"

    @property
    def script(self) -> str:
        return ";\n".join(self.statements)

    @property
    def checks(self) -> str:
        """One query per reference: raises (``bulk_orphan``) on the first staged row
        whose parent is missing once the statements ran."""
        return ";\n".join(
            f"SELECT bulk_orphan(format('{self.table}: %s has no {parent}.{col} row', v)) "
            f"FROM (SELECT DISTINCT {value} AS v FROM {self.table}) x WHERE v IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{col} = x.v) LIMIT 1"
            for value, parent, col in self.references
        )


_SESSION = ("session_id", "sessions", "id")


# ---- the kernel's event batches (aitrapp.kernel.persist builds the records) ----
_SIGNAL_COLS = (
    "id, session_id, ts, instrument_token, tradingsymbol, strategy, side, entry, stop, tp"
)

DECISIONS = Stage(
    "bulk_decisions",
    _cols(
        "session_id uuid, plan_id text, ts_ns bigint, token bigint, tradingsymbol text, "
        "strategy text, side text, qty bigint, entry bigint, stop bigint, tp bigint, "
        "reason text, risk_paise bigint, heat_after_pct text, config_sha text"
    ),
    (
        f"INSERT INTO signals ({_SIGNAL_COLS}, reason) "
        f"SELECT {_id('signal', 'plan_id')}, session_id, {_ts('ts_ns')}, token, tradingsymbol, "
        f"strategy, side, {_rupees('entry')}, {_rupees('stop')}, {_rupees('tp')}, reason "
        "FROM bulk_decisions ON CONFLICT (id) DO NOTHING",
        "INSERT INTO decisions (id, session_id, signal_id, plan_id, ts, tradingsymbol, strategy, "
        "side, qty, entry, stop, tp, risk_rupees, heat_after_pct, config_sha) "
        f"SELECT {_id('decision', 'plan_id')}, session_id, {_id('signal', 'plan_id')}, plan_id, "
        f"{_ts('ts_ns')}, tradingsymbol, strategy, side, qty, {_rupees('entry')}, "
        f"{_rupees('stop')}, {_rupees('tp')}, {_rupees('risk_paise')}, "
        "heat_after_pct::numeric, config_sha FROM bulk_decisions ON CONFLICT (id) DO NOTHING",
    ),
    (_SESSION, (_id("signal", "plan_id"), "signals", "id")),
)

# "k=v;k=v" -> jsonb, as str.split(";") then partition("="): the value is
# everything after the first "=" ("" without one); a repeated key keeps the last.
_DETAILS = (
    "(SELECT coalesce(jsonb_object_agg(split_part(p, '=', 1), "
    "substr(p, length(split_part(p, '=', 1)) + 2)), '{}'::jsonb) "
    "FROM unnest(string_to_array(details, ';')) AS p WHERE p <> '')"
)

BLOCKS = Stage(
    "bulk_blocks",
    _cols(
        "session_id uuid, seq bigint, ts_ns bigint, token bigint, tradingsymbol text, "
        "strategy text, side text, reason text, entry bigint, stop bigint, tp bigint, "
        "details text"
    ),
    (
        f"INSERT INTO signals ({_SIGNAL_COLS}) "
        f"SELECT {_id('block-signal', 'seq')}, session_id, {_ts('ts_ns')}, token, tradingsymbol, "
        f"strategy, side, {_rupees('entry')}, {_rupees('stop')}, {_rupees('tp')} "
        "FROM bulk_blocks ON CONFLICT (id) DO NOTHING",
        # Refusals repeat their details: each distinct one is parsed once
        # (MATERIALIZED: else the parse is pulled back up into every row).
        "WITH d AS MATERIALIZED ("
        f"SELECT details, strategy, {_DETAILS} || jsonb_build_object('strategy', strategy) AS j "
        "FROM (SELECT DISTINCT details, strategy FROM bulk_blocks) u) "
        "INSERT INTO risk_events (id, session_id, signal_id, ts, reason, details) "
        f"SELECT {_id('risk-event', 'b.seq', 'b.session_id::text')}, b.session_id, "
        f"{_id('block-signal', 'b.seq', 'b.session_id::text')}, {_ts('b.ts_ns')}, b.reason, d.j "
        "FROM bulk_blocks b JOIN d "
        "ON coalesce(d.details, '') = coalesce(b.details, '') AND d.strategy = b.strategy "
        "ON CONFLICT (id) DO NOTHING",
    ),
    (_SESSION, (_id("block-signal", "seq"), "signals", "id")),
)


# repo.OrderStatusUpdate's guard, for all of a batch's updates of an order at once.
# Applied one by one in seq order, update k of an order changes it iff the order
# is not terminal, no earlier applied update was terminal, and its filled_qty is
# >= the order's filled_qty so far; as the applied ones never shrink, "so far" is
# the largest of the stored one and every earlier update's (applied or not).
# The order then ends as the last applied update says; avg_price and the message
# are the last ones given (else kept), the broker id the stored one (else the
# first given), updated_at the latest.
def _fold(seen: str) -> str:
    """The CTEs that fold each order's updates; ``seen`` yields the bulk_updates
    rows with the order's stored ``stored_status`` and ``stored_filled``."""
    return f"""
WITH seen AS ({seen}
), guarded AS (
  SELECT *, filled_qty >= greatest(stored_filled, coalesce(max(filled_qty) OVER (
      PARTITION BY client_order_id ORDER BY seq
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS fills_ok FROM seen
), stopped AS (
  SELECT *, min(seq) FILTER (WHERE fills_ok AND status IN {_TERMINAL})
      OVER (PARTITION BY client_order_id) AS terminal_seq
  FROM guarded
), folded AS (
  SELECT client_order_id,
    (array_agg(status ORDER BY seq DESC))[1] AS status,
    (array_agg(filled_qty ORDER BY seq DESC))[1] AS filled_qty,
    (array_agg(avg_price ORDER BY seq DESC) FILTER (WHERE avg_price <> 0))[1] AS avg_price,
    (array_agg(broker_order_id ORDER BY seq) FILTER (WHERE broker_order_id IS NOT NULL))[1]
      AS broker_order_id,
    (array_agg(message ORDER BY seq DESC) FILTER (WHERE message <> ''))[1] AS message,
    max(ts_ns) AS ts_ns
  FROM stopped
  WHERE fills_ok AND seq <= coalesce(terminal_seq, seq) AND stored_status NOT IN {_TERMINAL}
  GROUP BY client_order_id
)"""


def _status(col: str) -> str:
    return f"CASE WHEN {col} = 'OPEN PENDING' THEN 'PENDING' ELSE {col} END"


# Orders already in the table: their updates fold into one guarded change. An
# order that is terminal already is left out before the fold (nothing can move it).
_ORDER_STATUS = (
    _fold(
        "SELECT s.*, o.status AS stored_status, o.filled_qty AS stored_filled "
        "FROM bulk_updates s JOIN orders o ON o.client_order_id = s.client_order_id "
        f"WHERE o.status NOT IN {_TERMINAL}"
    )
    + f"""
UPDATE orders o SET
  status = {_status("f.status")},
  filled_qty = f.filled_qty,
  avg_price = coalesce({_rupees("f.avg_price", nullable=True)}, o.avg_price),
  broker_order_id = coalesce(o.broker_order_id, f.broker_order_id),
  status_message = coalesce(f.message, o.status_message),
  updated_at = GREATEST(o.updated_at, {_ts("f.ts_ns")})
FROM folded f
WHERE o.client_order_id = f.client_order_id
  AND o.filled_qty <= f.filled_qty AND o.status NOT IN {_TERMINAL}"""
)

# A new order is inserted already in the state its updates in the same write
# leave it (folded from NEW, as the guarded update would fold them): one row
# version instead of a NEW row and an update. The UPDATES stage then meets it
# terminal (left alone) or re-applies the same fold (no change). A write applied
# stage by stage (isolating a bad row) has no updates staged yet here: NEW.
ORDERS = Stage(
    "bulk_orders",
    _cols(
        "session_id uuid, seq bigint, client_order_id text, plan_id text, tag text, "
        "role text, exchange text, tradingsymbol text, token bigint, side text, "
        "order_type text, qty bigint, ts_ns bigint, price bigint, trigger bigint, "
        "broker_order_id text"
    ),
    (
        _fold(
            "SELECT s.*, 'NEW'::text AS stored_status, 0::bigint AS stored_filled "
            "FROM bulk_updates s WHERE s.client_order_id IN "
            "(SELECT client_order_id FROM bulk_orders)"
        )
        + "\nINSERT INTO orders (session_id, client_order_id, plan_id, tag, role, exchange, "
        "tradingsymbol, instrument_token, side, order_type, product, qty, price, trigger_price, "
        "broker_order_id, status, filled_qty, avg_price, status_message, created_at, "
        "updated_at) "
        "SELECT b.session_id, b.client_order_id, b.plan_id, b.tag, b.role, b.exchange, "
        "b.tradingsymbol, b.token, b.side, b.order_type, 'MIS', b.qty, "
        f"{_rupees('b.price', nullable=True)}, {_rupees('b.trigger', nullable=True)}, "
        "coalesce(b.broker_order_id, f.broker_order_id), "
        f"coalesce({_status('f.status')}, 'NEW'), coalesce(f.filled_qty, 0), "
        f"{_rupees('f.avg_price', nullable=True)}, f.message, {_ts('b.ts_ns')}, "
        f"GREATEST({_ts('b.ts_ns')}, {_ts('f.ts_ns')}) "
        "FROM bulk_orders b LEFT JOIN folded f ON f.client_order_id = b.client_order_id "
        "ORDER BY b.seq ON CONFLICT (client_order_id) DO NOTHING",
    ),
    (_SESSION,),
)

UPDATES = Stage(
    "bulk_updates",
    _cols(
        "session_id uuid, seq bigint, client_order_id text, broker_order_id text, "
        "ts_ns bigint, status text, filled_qty bigint, avg_price bigint, message text, "
        "triggered boolean"
    ),
    (
        "INSERT INTO order_events (id, client_order_id, broker_order_id, ts, status, filled_qty, "
        "avg_price, payload) "
        f"SELECT {_id('order-event', 'seq')}, client_order_id, broker_order_id, {_ts('ts_ns')}, "
        f"status, filled_qty, {_rupees('avg_price', nullable=True)}, "
        "jsonb_build_object('message', NULLIF(message, ''), 'triggered', triggered) "
        "FROM bulk_updates ON CONFLICT (id) DO NOTHING",
        _ORDER_STATUS,
    ),
    (("client_order_id", "orders", "client_order_id"),),
)

# A fill's key in its scope: the order id and its cumulative filled quantity.
_FILL_KEY = "order_id || ':' || filled_qty"

FILLS = Stage(
    "bulk_fills",
    _cols(
        "fill_scope text, order_id bigint, filled_qty bigint, client_order_id text, "
        "qty bigint, price bigint, ts_ns bigint"
    ),
    (
        "INSERT INTO fills (id, fill_scope, broker_fill_key, client_order_id, broker_order_id, "
        "qty, price, ts) "
        f"SELECT {_id('fill', _FILL_KEY, 'fill_scope')}, fill_scope, {_FILL_KEY}, "
        "client_order_id, order_id::text, qty, "
        f"{_rupees('price')}, {_ts('ts_ns')} FROM bulk_fills ON CONFLICT (id) DO NOTHING",
    ),
    (("client_order_id", "orders", "client_order_id"),),
)

# repo.PositionUpdate for a batch: each sets the size and average entry, so the
# last one of a plan (in seq order) is what they leave; updated_at the latest.
_POSITION_UPDATE = f"""
UPDATE positions p SET qty = f.qty, avg_entry = f.avg_entry_e4 * 0.0001,
  updated_at = GREATEST(p.updated_at, {_ts("f.ts_ns")})
FROM (
  SELECT DISTINCT ON (plan_id) plan_id, qty, avg_entry_e4,
    max(ts_ns) OVER (PARTITION BY plan_id) AS ts_ns
  FROM bulk_positions WHERE kind = 'update' ORDER BY plan_id, seq DESC
) f
WHERE p.plan_id = f.plan_id AND p.status = 'OPEN'"""

# A position opens with its first entry fill; later fills resize it.
POSITIONS = Stage(
    "bulk_positions",
    _cols(
        "session_id uuid, seq bigint, kind text, plan_id text, token bigint, "
        "exchange text, tradingsymbol text, side text, qty bigint, avg_entry_e4 bigint, "
        "ts_ns bigint"
    ),
    (
        "INSERT INTO positions (id, session_id, plan_id, instrument_token, exchange, "
        "tradingsymbol, side, qty, avg_entry, opened_at, updated_at, status) "
        f"SELECT {_id('position', 'plan_id')}, session_id, plan_id, token, exchange, "
        f"tradingsymbol, side, qty, avg_entry_e4 * 0.0001, {_ts('ts_ns')}, {_ts('ts_ns')}, "
        "'OPEN' FROM bulk_positions WHERE kind = 'open' ORDER BY seq ON CONFLICT (id) DO NOTHING",
        _POSITION_UPDATE,
    ),
    (_SESSION,),
)

# A trade closes its position (repo.PositionClose) and is booked once.
TRADES = Stage(
    "bulk_trades",
    _cols(
        "session_id uuid, decision_id uuid, plan_id text, strategy text, exchange text, "
        "tradingsymbol text, side text, qty bigint, entry_price numeric, exit_price numeric, "
        "gross_pnl numeric, charges numeric, net_pnl numeric, exit_reason text, "
        "opened_ns bigint, closed_ns bigint"
    ),
    (
        f"UPDATE positions p SET status = 'CLOSED', closed_at = {_ts('s.closed_ns')}, "
        f"exit_price = s.exit_price, updated_at = GREATEST(p.updated_at, {_ts('s.closed_ns')}) "
        "FROM bulk_trades s WHERE p.plan_id = s.plan_id AND p.status = 'OPEN'",
        "INSERT INTO trades (id, session_id, decision_id, plan_id, strategy, exchange, "
        "tradingsymbol, side, qty, entry_price, exit_price, gross_pnl, charges, net_pnl, "
        "exit_reason, opened_at, closed_at) "
        f"SELECT {_id('trade', 'plan_id')}, session_id, decision_id, plan_id, "
        "strategy, exchange, tradingsymbol, side, qty, entry_price, exit_price, gross_pnl, "
        f"charges, net_pnl, exit_reason, {_ts('opened_ns')}, {_ts('closed_ns')} "
        "FROM bulk_trades ON CONFLICT (id) DO NOTHING",
    ),
    # The plan's decision: this session's, or an earlier process's (an adopted plan).
    (_SESSION, ("decision_id", "decisions", "id")),
)

TRANSITIONS = Stage(
    "bulk_transitions",
    _cols(
        "session_id uuid, plan_id text, seq bigint, ts_ns bigint, from_state text, "
        "to_state text, event text, commands text"
    ),
    (
        "INSERT INTO bracket_transitions (plan_id, seq, ts, from_state, to_state, event, "
        f"session_id, commands) SELECT plan_id, seq, {_ts('ts_ns')}, from_state, to_state, "
        "event, session_id, commands::jsonb "
        "FROM bulk_transitions ON CONFLICT (plan_id, seq) DO NOTHING",
    ),
    (_SESSION,),
)

# Parents before children (foreign keys), inserts before the updates that find them.
STAGES: dict[str, Stage] = {
    s.table: s for s in (DECISIONS, BLOCKS, ORDERS, UPDATES, FILLS, POSITIONS, TRADES, TRANSITIONS)
}


@dataclass(eq=False, slots=True)
class BulkWrite:
    """Records per stage (``{stage table: [tuple, ...]}``), written in one transaction."""

    parts: dict[str, list[Record]]
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        for name, records in self.parts.items():
            stage = STAGES.get(name)
            if stage is None:
                raise ValueError(f"bulk write: unknown stage {name!r}; known: {list(STAGES)}")
            if records and len(records[0]) != len(stage.columns):
                raise ValueError(
                    f"bulk write: {name} records have {len(records[0])} values, "
                    f"the stage has {len(stage.columns)} columns {stage.names}"
                )
        self.rows = sum(len(r) for r in self.parts.values())

    def stages(self) -> Iterator[tuple[Stage, list[Record]]]:
        """Non-empty stages in the order they must be applied."""
        for name, stage in STAGES.items():
            records = self.parts.get(name)
            if records:
                yield stage, records

    @classmethod
    def merge(cls, bulks: Sequence[BulkWrite]) -> BulkWrite:
        """One write with every row of ``bulks``, each stage's rows in bulk order."""
        if len(bulks) == 1:
            return bulks[0]
        parts: dict[str, list[Record]] = {}
        for b in bulks:
            for name, records in b.parts.items():
                parts.setdefault(name, []).extend(records)
        return cls(parts)


# Every stage table exists before any statement runs: the orders stage reads
# the staged updates (empty when a write is applied stage by stage).
_CREATE_ALL = ";\n".join(s.create_sql for s in STAGES.values())


async def may_check_per_write(conn: Connection) -> bool:
    """Whether this role may turn per-row foreign-key triggers off for a write
    (``session_replication_role``: superuser, or granted SET on PostgreSQL 15+)."""
    try:
        return bool(
            await conn.fetchval("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        )
    except asyncpg.UndefinedFunctionError:
        sql = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        return bool(await conn.fetchval(sql))


async def apply(
    conn: Connection,
    bulk: BulkWrite,
    statement_timeout_s: float,
    *,
    per_write_fk: bool = False,
    direct: bool = False,
) -> None:
    """COPY every stage, then run every stage's statements (inside the caller's
    transaction). With ``per_write_fk`` the foreign keys are checked once per
    write, set-based, instead of by a trigger per row (migration 0008); an
    orphan raises ``ForeignKeyViolationError`` and the transaction rolls back.

    ``direct``: the append-only rows go straight into their tables by binary
    COPY (:mod:`aitrapp.db.bulk_direct`); a row already there or a bad row then
    fails the write, and the caller applies it again without ``direct``."""
    stages = list(bulk.stages())
    if not stages:
        return
    timeout = statement_timeout_s
    payloads: list[bulk_direct.Payload] = []
    references: list[bulk_direct.Reference] = []
    staged: list[tuple[Stage, list[Record]]] = []
    scripts: list[str] = []
    for stage, records in stages:
        to_table = bulk_direct.DIRECT.get(stage.table) if direct else None
        if to_table is not None:
            fed, refs = to_table(records)
            payloads += fed
            references += refs
        if to_table is None or stage is UPDATES:
            staged.append((stage, records))
            scripts.append(_ORDER_STATUS if to_table is not None else stage.script)
    # Sorts and hashes of a write of tens of thousands of rows fit in memory. (Statements
    # go together where they can: each round trip may wait for a busy event loop.)
    replica = "SET LOCAL session_replication_role = replica;\n" if per_write_fk else ""
    await conn.execute(f"SET LOCAL work_mem = '64MB';\n{replica}{_CREATE_ALL}", timeout=timeout)
    for stage, records in staged:
        await conn.copy_records_to_table(
            stage.table, records=records, columns=stage.names, timeout=timeout
        )
    if scripts:
        await conn.execute(";\n".join(scripts), timeout=timeout)
    # After the staged statements: with per-row checks on, the orders are there.
    for p in payloads:
        # A buffer is sent as it is (asyncpg's stubs list only files and iterables).
        source = cast(Any, memoryview(p.data))
        await conn.copy_to_table(
            p.table, source=source, columns=p.columns, format="binary", timeout=timeout
        )
    if per_write_fk:
        for ref in references:
            await conn.execute(bulk_direct.check_sql(ref), list(ref.values), timeout=timeout)
        checks = [s.checks for s, _ in staged if s.references]
        checks.append("SET LOCAL session_replication_role = origin")
        await conn.execute(";\n".join(checks), timeout=timeout)


async def apply_stage(
    conn: Connection, stage: Stage, records: Sequence[Record], statement_timeout_s: float
) -> None:
    """One stage on its own (isolating rejected rows; foreign keys checked per row):
    stage table emptied first."""
    await conn.execute(f"{_CREATE_ALL};\nDELETE FROM {stage.table}", timeout=statement_timeout_s)
    await conn.copy_records_to_table(
        stage.table, records=records, columns=stage.names, timeout=statement_timeout_s
    )
    await conn.execute(stage.script, timeout=statement_timeout_s)


@dataclass(frozen=True, slots=True)
class BulkRow:
    """One staged row, by name (what a rejected or dropped bulk row is logged as)."""

    stage: str
    values: dict[str, Any]


def rows_of(stage: Stage, records: Iterable[Record]) -> list[BulkRow]:
    return [BulkRow(stage.table, dict(zip(stage.names, r, strict=True))) for r in records]


# ---- spill files: a bulk write as one JSON line ----
BULK_TYPE = "BulkWrite"


def encode_bulk(bulk: BulkWrite) -> str:
    return json_dumps({"type": BULK_TYPE, "parts": bulk.parts})


def _decoder(sql_type: str) -> Any:
    if sql_type == "uuid":
        return lambda v: None if v is None else UUID(v)
    if sql_type == "numeric":
        return lambda v: None if v is None else Decimal(v)
    return None


def decode_bulk(doc: dict[str, Any]) -> BulkWrite:
    parts: dict[str, list[Record]] = {}
    for name, records in doc["parts"].items():
        stage = STAGES.get(name)
        if stage is None:
            raise ValueError(f"spill line has an unknown bulk stage: {name!r}")
        decoders = [_decoder(t) for _, t in stage.columns]
        parts[name] = [
            tuple(v if d is None else d(v) for d, v in zip(decoders, r, strict=True))
            for r in records
        ]
    return BulkWrite(parts)


def is_bulk_line(doc: object) -> bool:
    return isinstance(doc, dict) and doc.get("type") == BULK_TYPE


__all__ = [
    "STAGES",
    "BulkRow",
    "BulkWrite",
    "Stage",
    "apply",
    "apply_stage",
    "bulk_id",
    "decode_bulk",
    "encode_bulk",
    "is_bulk_line",
    "may_check_per_write",
    "rows_of",
]
