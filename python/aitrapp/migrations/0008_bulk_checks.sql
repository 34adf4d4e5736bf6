-- The kernel's bulk writes check their foreign keys per write, not per row.
--
-- A bulk write moves tens of thousands of rows whose parents are in the same
-- transaction or are the session itself; a foreign key's per-row trigger is
-- about half of the cost of such a write. When the role may, the writer runs
-- the write with session_replication_role = replica (per-row foreign-key
-- triggers off, as pg_restore does) and checks every reference of the write
-- with one set-based query per reference before it commits (bulk_orphan
-- raises foreign_key_violation naming the row, so the write rolls back and
-- goes row by row). The domain's own triggers must fire whatever the role:
-- a conflicting fill is refused and history stays append-only.

CREATE FUNCTION bulk_orphan(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bulk write: %', what USING ERRCODE = 'foreign_key_violation';
END;
$$;

ALTER TABLE fills ENABLE ALWAYS TRIGGER fills_refuse_conflict;
ALTER TABLE order_events ENABLE ALWAYS TRIGGER order_events_append_only;
ALTER TABLE order_events ENABLE ALWAYS TRIGGER order_events_no_truncate;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE bracket_transitions ENABLE ALWAYS TRIGGER bracket_transitions_append_only;
