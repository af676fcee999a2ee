-- Catch-up (github::catchup): GitHub never retries a failed delivery, so prpr
-- asks it to. One row per job ('deliveries'): a lease so that one task at a
-- time runs a pass (a redelivery is requested once), and how far back the
-- last complete pass looked, so the next one starts there.
CREATE TABLE catch_up (
    id          TEXT   PRIMARY KEY,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,   -- unix ms
    checked_to  BIGINT NOT NULL DEFAULT 0    -- unix ms: deliveries before it were checked
);
