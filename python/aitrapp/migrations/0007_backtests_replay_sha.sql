-- Backtests and content-addressed replays.
--
-- A backtest runs each trading day of its data as its own session; the
-- sessions point at the backtest that ran them. A replayed session carries
-- the SHA-256 of its data (the day's ticks and the instruments they name):
-- together with config_sha it identifies the run, whatever the file is called.

CREATE TABLE backtests (
    id           uuid        PRIMARY KEY,
    created_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    status       text        NOT NULL DEFAULT 'RUNNING'
                 CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'ABORTED')),
    config_sha   text        NOT NULL,
    params       jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- data, range, symbols, settings
    days         jsonb       NOT NULL DEFAULT '[]'::jsonb,  -- per day: session id, status
    skipped      jsonb       NOT NULL DEFAULT '[]'::jsonb,  -- days not run, with the reason
    summary      jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- the report's totals
    CHECK (finished_at IS NULL OR finished_at >= created_at)
);
CREATE INDEX backtests_created_idx ON backtests (created_at DESC);

ALTER TABLE sessions
    ADD COLUMN backtest_id uuid REFERENCES backtests (id),
    ADD COLUMN replay_sha  text;
CREATE INDEX sessions_backtest_idx ON sessions (backtest_id, trading_date);
CREATE INDEX sessions_replay_idx ON sessions (replay_sha, config_sha) WHERE replay_sha IS NOT NULL;
