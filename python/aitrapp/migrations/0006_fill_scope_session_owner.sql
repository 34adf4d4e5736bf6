-- Fills keyed per broker account (per session for paper), conflicting fills
-- refused loudly, and the process that owns a RUNNING session.
--
-- A fill's key (broker order id + cumulative quantity, or a trade id) is unique
-- only within one broker account; paper order ids restart in every process, so a
-- paper session is its own account. fill_scope names that account:
-- 'paper:<session id>' or '<broker>:<account>'.

ALTER TABLE fills ADD COLUMN fill_scope text;
UPDATE fills f
SET fill_scope = CASE WHEN s.mode = 'PAPER' THEN 'paper:' || s.id::text ELSE 'kite:legacy' END
FROM orders o JOIN sessions s ON s.id = o.session_id
WHERE o.client_order_id = f.client_order_id;
UPDATE fills SET fill_scope = 'legacy' WHERE fill_scope IS NULL;
ALTER TABLE fills ALTER COLUMN fill_scope SET NOT NULL;
ALTER TABLE fills DROP CONSTRAINT fills_broker_fill_key_key;
ALTER TABLE fills ADD CONSTRAINT fills_scope_key_key UNIQUE (fill_scope, broker_fill_key);

-- The same fill again (a retried batch, a restart that sees it once more) lands
-- once; a different fill under a taken key is an error, never silently dropped.
CREATE FUNCTION fills_refuse_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prior fills%ROWTYPE;
BEGIN
    SELECT * INTO prior FROM fills
    WHERE fill_scope = NEW.fill_scope AND broker_fill_key = NEW.broker_fill_key;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    IF prior.client_order_id IS NOT DISTINCT FROM NEW.client_order_id
       AND prior.broker_order_id IS NOT DISTINCT FROM NEW.broker_order_id
       AND prior.qty = NEW.qty AND prior.price = NEW.price THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'conflicting fill % in %: % x % @ % (order %) already recorded as % x % @ % (order %)',
        NEW.broker_fill_key, NEW.fill_scope, NEW.client_order_id, NEW.qty, NEW.price,
        NEW.broker_order_id, prior.client_order_id, prior.qty, prior.price, prior.broker_order_id
        USING ERRCODE = 'unique_violation', CONSTRAINT = 'fills_conflicting_fill';
END;
$$;
CREATE TRIGGER fills_refuse_conflict
    BEFORE INSERT ON fills
    FOR EACH ROW EXECUTE FUNCTION fills_refuse_conflict();

-- The process that runs a session: a RUNNING session whose process is gone
-- (same host, pid not alive) is marked ABORTED at the next start.
ALTER TABLE sessions
    ADD COLUMN pid  integer CHECK (pid IS NULL OR pid > 0),
    ADD COLUMN host text;
CREATE INDEX sessions_running_idx ON sessions (host, pid) WHERE status = 'RUNNING';
