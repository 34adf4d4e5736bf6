-- Every step of every OCO bracket, as the state machine took it: the audit
-- trail of why each order was placed, resized or cancelled. Written before the
-- step's commands are executed (the manager hands it over first).

CREATE TABLE bracket_transitions (
    plan_id      text        NOT NULL,
    seq          integer     NOT NULL CHECK (seq >= 0),
    session_id   uuid        REFERENCES sessions (id),
    ts           timestamptz NOT NULL,
    from_state   text        NOT NULL,
    to_state     text        NOT NULL,
    event        text        NOT NULL,
    detail       text        NOT NULL DEFAULT '',
    commands     jsonb       NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (plan_id, seq)
);
CREATE INDEX bracket_transitions_session_ts_idx ON bracket_transitions (session_id, ts);

CREATE TRIGGER bracket_transitions_append_only
    BEFORE UPDATE OR DELETE ON bracket_transitions
    FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite();
