-- Reminders (issue 12): which schedule slots have fired, people's own
-- settings from the /prpr slash command, and their snoozes.

-- One row per (schedule, local date, local time): inserting it is how one
-- prpr task, and only one, claims a slot; the digest is queued in the same
-- transaction. `outcome` is queued | empty | skipped.
CREATE TABLE reminder_slots (
    schedule   TEXT   NOT NULL,
    local_date TEXT   NOT NULL,                  -- YYYY-MM-DD in the schedule's zone
    local_time TEXT   NOT NULL,                  -- HH:MM as configured
    due_at     BIGINT NOT NULL,                  -- unix ms the slot fell due
    outcome    TEXT   NOT NULL,
    fired_at   BIGINT NOT NULL,
    PRIMARY KEY (schedule, local_date, local_time)
);

-- Per Slack user: settings made with /prpr; NULL means the config's default.
CREATE TABLE user_prefs (
    user_id    TEXT   PRIMARY KEY,
    quiet      TEXT,                             -- JSON {from, to, tz}
    remind     TEXT,                             -- JSON {"off": true} or {times, tz}
    updated_at BIGINT NOT NULL
);

-- No reminders about a PR for a person until `until_at` (real-time notices
-- still go).
CREATE TABLE snoozes (
    user_id  TEXT   NOT NULL,
    repo     TEXT   NOT NULL,                    -- lower-cased owner/name
    number   BIGINT NOT NULL,
    until_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, repo, number)
);
