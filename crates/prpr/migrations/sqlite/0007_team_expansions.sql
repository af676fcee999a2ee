-- Team review requests waiting to be passed on to the team's members (one
-- DM each), written by the transaction that records the delivery, so an
-- accepted request is never lost. A row is due at due_at (received + the
-- debounce); a task claims it with a lease (lease_owner, lease_until), and
-- queues the members' notices and marks it done in one transaction.
-- status: pending, done (notices queued, or none were needed).
CREATE TABLE team_expansions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT   NOT NULL,
    repo        TEXT   NOT NULL,
    number      BIGINT NOT NULL,
    team        TEXT   NOT NULL,                 -- org/slug, lower-cased
    expansion   TEXT   NOT NULL,                 -- JSON: the team, its notice, who asked
    status      TEXT   NOT NULL DEFAULT 'pending',
    attempts    BIGINT NOT NULL DEFAULT 0,       -- failed member lookups
    due_at      BIGINT NOT NULL,                 -- unix ms
    lease_owner TEXT,
    lease_until BIGINT,
    last_error  TEXT,
    outcome     TEXT,                            -- what was done, for diagnostics
    created_at  BIGINT NOT NULL,
    done_at     BIGINT
);
-- One pending expansion per team request: a team asked again before its
-- expansion ran replaces the waiting one.
CREATE UNIQUE INDEX team_expansions_one_pending ON team_expansions (repo, number, team) WHERE status = 'pending';
CREATE INDEX team_expansions_due ON team_expansions (due_at) WHERE status = 'pending';
