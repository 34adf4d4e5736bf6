-- Orders, their append-only event history, fills and positions.
-- An order row (status NEW) is written before the broker is called; the
-- unique client_order_id is the last line against a duplicate order.
-- orders.plan_id has no foreign key on purpose: the NEW row is written
-- synchronously and may reach the database before its queued decision row.

CREATE TABLE orders (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id       uuid        NOT NULL REFERENCES sessions (id),
    client_order_id  text        NOT NULL UNIQUE,
    plan_id          text        NOT NULL,
    tag              text        NOT NULL CHECK (char_length(tag) BETWEEN 1 AND 20),
    role             text        NOT NULL,  -- ENTRY, STOP, TP, TP1, EXIT, ...
    broker_order_id  text,  -- not unique: paper brokers may reuse ids across sessions
    exchange         text        NOT NULL,
    tradingsymbol    text        NOT NULL,
    instrument_token bigint      NOT NULL,
    side             text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type       text        NOT NULL CHECK (order_type IN ('MARKET', 'LIMIT', 'SL', 'SL-M')),
    product          text        NOT NULL,
    qty              integer     NOT NULL CHECK (qty > 0),
    price            numeric(18, 4),
    trigger_price    numeric(18, 4),
    status           text        NOT NULL DEFAULT 'NEW'
                     CHECK (status IN ('NEW', 'PENDING', 'OPEN', 'TRIGGER PENDING',
                                       'COMPLETE', 'CANCELLED', 'REJECTED')),
    filled_qty       integer     NOT NULL DEFAULT 0 CHECK (filled_qty >= 0),
    avg_price        numeric(18, 4),
    status_message   text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CHECK (filled_qty <= qty)
);
CREATE INDEX orders_session_created_idx ON orders (session_id, created_at);
CREATE INDEX orders_plan_idx ON orders (plan_id);
CREATE INDEX orders_status_idx ON orders (status, created_at);
CREATE INDEX orders_tag_idx ON orders (tag);
CREATE INDEX orders_broker_idx ON orders (broker_order_id);

CREATE TABLE order_events (
    id               uuid        PRIMARY KEY,
    client_order_id  text        REFERENCES orders (client_order_id),
    broker_order_id  text,
    ts               timestamptz NOT NULL,
    status           text        NOT NULL,
    filled_qty       integer     NOT NULL DEFAULT 0 CHECK (filled_qty >= 0),
    pending_qty      integer     NOT NULL DEFAULT 0 CHECK (pending_qty >= 0),
    avg_price        numeric(18, 4),
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CHECK (client_order_id IS NOT NULL OR broker_order_id IS NOT NULL)
);
CREATE INDEX order_events_client_ts_idx ON order_events (client_order_id, ts);
CREATE INDEX order_events_broker_idx ON order_events (broker_order_id);
CREATE INDEX order_events_ts_idx ON order_events (ts);

-- History is evidence: refuse to rewrite it.
CREATE FUNCTION forbid_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER order_events_append_only
    BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite();
CREATE TRIGGER order_events_no_truncate
    BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_rewrite();

CREATE TABLE fills (
    id               uuid        PRIMARY KEY,
    client_order_id  text        REFERENCES orders (client_order_id),
    broker_order_id  text,
    broker_fill_key  text        NOT NULL UNIQUE,  -- trade id, or order id + cumulative qty
    qty              integer     NOT NULL CHECK (qty > 0),
    price            numeric(18, 4) NOT NULL CHECK (price > 0),
    ts               timestamptz NOT NULL,
    CHECK (client_order_id IS NOT NULL OR broker_order_id IS NOT NULL)
);
CREATE INDEX fills_client_ts_idx ON fills (client_order_id, ts);
CREATE INDEX fills_ts_idx ON fills (ts);

CREATE TABLE positions (
    id                uuid        PRIMARY KEY,
    session_id        uuid        NOT NULL REFERENCES sessions (id),
    plan_id           text        NOT NULL,
    instrument_token  bigint      NOT NULL,
    exchange          text        NOT NULL,
    tradingsymbol     text        NOT NULL,
    side              text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty               integer     NOT NULL CHECK (qty >= 0),
    avg_entry         numeric(18, 4) NOT NULL CHECK (avg_entry > 0),
    opened_at         timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    closed_at         timestamptz,
    exit_price        numeric(18, 4),
    status            text        NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'CLOSED')),
    CHECK ((status = 'CLOSED') = (closed_at IS NOT NULL)),
    CHECK (status = 'CLOSED' OR qty > 0)
);
-- At most one open position per plan.
CREATE UNIQUE INDEX positions_open_plan_uidx ON positions (plan_id) WHERE status = 'OPEN';
CREATE INDEX positions_session_status_idx ON positions (session_id, status);
