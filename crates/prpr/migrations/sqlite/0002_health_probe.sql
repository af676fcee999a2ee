-- One row that /readyz and /healthz rewrite to prove a delivery could be
-- stored now (a committed write, not a read: a read-only file, a full disk or
-- a replica after failover answer reads). Created here rather than at run
-- time so the probe needs no DDL rights and never takes a schema lock.
-- IF NOT EXISTS: prpr versions before this migration created the table from
-- the probe itself, so it may already be there.
CREATE TABLE IF NOT EXISTS health_probe (
    id INTEGER PRIMARY KEY,
    at BIGINT  NOT NULL            -- unix ms of the last successful probe
);
