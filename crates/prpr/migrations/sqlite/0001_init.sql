-- Deliveries seen, by X-GitHub-Delivery: the dedup record and an audit trail.
CREATE TABLE deliveries (
    id            TEXT    PRIMARY KEY,
    event         TEXT    NOT NULL,
    action        TEXT,
    repo          TEXT,
    number        BIGINT,
    outcome       TEXT    NOT NULL,          -- ignored (no notification) | queued
    notifications INTEGER NOT NULL,
    received_at   BIGINT  NOT NULL           -- unix ms
);
CREATE INDEX deliveries_received ON deliveries (received_at);

-- What the rules remember per pull request (JSON of rules::PrState).
CREATE TABLE pr_state (
    repo       TEXT   NOT NULL,
    number     BIGINT NOT NULL,
    state      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, number)
);

-- Notifications waiting for, or done with, Slack. AUTOINCREMENT: ids are never
-- reused, so id order is queue order.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    message         TEXT    NOT NULL,        -- JSON {text, blocks}
    status          TEXT    NOT NULL DEFAULT 'pending',  -- pending | sent | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    slack_ts        TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_pending ON outbox (channel, id) WHERE status = 'pending';
CREATE INDEX outbox_status ON outbox (status, id);
