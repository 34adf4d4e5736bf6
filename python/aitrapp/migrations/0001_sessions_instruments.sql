-- Sessions (one trading session of one mode on one day) and the instruments master.
-- Money and prices are NUMERIC(18,4) rupees; every time is timestamptz.

CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    trading_date    date        NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('PAPER', 'LIVE')),
    feed            text        NOT NULL CHECK (feed IN ('synthetic', 'replay', 'kite')),
    config_sha      text,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    status          text        NOT NULL DEFAULT 'RUNNING'
                    CHECK (status IN ('RUNNING', 'COMPLETED', 'ABORTED', 'FAILED')),
    summary         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    burnin_verdict  jsonb,
    CHECK (ended_at IS NULL OR ended_at >= started_at),
    CHECK ((status = 'RUNNING') = (ended_at IS NULL))
);
CREATE INDEX sessions_trading_date_idx ON sessions (trading_date DESC, started_at DESC);
CREATE INDEX sessions_mode_status_idx ON sessions (mode, status);

CREATE TABLE instruments (
    instrument_token  bigint      PRIMARY KEY CHECK (instrument_token > 0),
    exchange          text        NOT NULL,
    tradingsymbol     text        NOT NULL,
    segment           text        NOT NULL,
    name              text,
    instrument_type   text,
    expiry            date,
    strike            numeric(18, 4),
    tick_size         numeric(18, 4) NOT NULL CHECK (tick_size > 0),
    lot_size          integer     NOT NULL CHECK (lot_size > 0),
    freeze_qty        integer     CHECK (freeze_qty IS NULL OR freeze_qty > 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX instruments_symbol_idx ON instruments (exchange, tradingsymbol);
