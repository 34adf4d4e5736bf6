-- Closed round trips and the operator audit trail, plus the trade chain view:
-- trade -> decision -> signal in one join, orders by plan_id.

CREATE TABLE trades (
    id             uuid        PRIMARY KEY,
    session_id     uuid        NOT NULL REFERENCES sessions (id),
    decision_id    uuid        NOT NULL REFERENCES decisions (id),
    plan_id        text        NOT NULL,
    strategy       text        NOT NULL,
    exchange       text        NOT NULL,
    tradingsymbol  text        NOT NULL,
    side           text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty            integer     NOT NULL CHECK (qty > 0),
    entry_price    numeric(18, 4) NOT NULL CHECK (entry_price > 0),
    exit_price     numeric(18, 4) NOT NULL CHECK (exit_price > 0),
    gross_pnl      numeric(18, 4) NOT NULL,
    charges        numeric(18, 4) NOT NULL CHECK (charges >= 0),
    net_pnl        numeric(18, 4) NOT NULL,
    exit_reason    text        NOT NULL,
    opened_at      timestamptz NOT NULL,
    closed_at      timestamptz NOT NULL,
    CHECK (closed_at >= opened_at),
    CHECK (net_pnl = gross_pnl - charges)
);
CREATE INDEX trades_session_closed_idx ON trades (session_id, closed_at);
CREATE INDEX trades_closed_idx ON trades (closed_at);
CREATE INDEX trades_plan_idx ON trades (plan_id);
CREATE INDEX trades_strategy_closed_idx ON trades (strategy, closed_at);

CREATE TABLE audit_log (
    id          uuid        PRIMARY KEY,
    ts          timestamptz NOT NULL,
    session_id  uuid        REFERENCES sessions (id),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    params      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    result      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_ts_idx ON audit_log (ts);
CREATE INDEX audit_log_action_ts_idx ON audit_log (action, ts);
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_rewrite();

CREATE VIEW trade_chain AS
SELECT t.id            AS trade_id,
       t.session_id,
       t.plan_id,
       t.strategy,
       t.tradingsymbol,
       t.side,
       t.qty,
       t.entry_price,
       t.exit_price,
       t.gross_pnl,
       t.charges,
       t.net_pnl,
       t.exit_reason,
       t.opened_at,
       t.closed_at,
       d.id            AS decision_id,
       d.ts            AS decision_ts,
       d.risk_rupees,
       d.heat_after_pct,
       d.config_sha,
       d.tick_to_decision_ms,
       s.id            AS signal_id,
       s.ts            AS signal_ts,
       s.entry         AS signal_entry,
       s.stop          AS signal_stop,
       s.tp            AS signal_tp,
       s.reason        AS signal_reason
FROM trades t
JOIN decisions d ON d.id = t.decision_id
JOIN signals s ON s.id = d.signal_id;
