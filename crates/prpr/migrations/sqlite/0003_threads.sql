-- One Slack thread per pull request per channel: where its root card is, and
-- how current Slack's copy of it is. The card itself is the PR's state
-- (pr_state.state → card); want_rev counts its changes, shown_rev is the
-- change Slack shows. A root is updated when want_rev > shown_rev and
-- update_due_at has passed, so changes in quick succession make one
-- chat.update with the latest state.
CREATE TABLE threads (
    channel         TEXT   NOT NULL,
    repo            TEXT   NOT NULL,
    number          BIGINT NOT NULL,
    root_ts         TEXT,                        -- Slack ts of the root, once posted
    want_rev        BIGINT NOT NULL DEFAULT 1,
    shown_rev       BIGINT NOT NULL DEFAULT 0,
    reactions       TEXT   NOT NULL DEFAULT '[]', -- JSON list the root carries
    update_due_at   BIGINT NOT NULL DEFAULT 0,   -- unix ms: no chat.update before
    update_attempts BIGINT NOT NULL DEFAULT 0,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (channel, repo, number)
);
CREATE INDEX threads_pr ON threads (repo, number);
CREATE INDEX threads_due ON threads (update_due_at) WHERE root_ts IS NOT NULL AND want_rev > shown_rev;
