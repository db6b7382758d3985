-- Version 2: the cluster. Several Uhrwerk nodes on one database share its workflows by shard
-- (hash of namespace and workflow id, modulo the shard count fixed when the cluster was first
-- started). Each shard has a lease (owner, epoch, expiry on the database's clock); a node takes
-- an expired lease by bumping the epoch and renews it without. Every commit of a shard checks,
-- in its own transaction, that the epoch is still the one its node took (uw_check_fence), so
-- a node that was paused or cut off can never commit over its successor.

CREATE TABLE uhrwerk_cluster (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    shards INTEGER NOT NULL CHECK (shards > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE uhrwerk_shards (
    shard_id INTEGER PRIMARY KEY,
    owner TEXT COLLATE "C" NOT NULL DEFAULT '',
    epoch BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);

CREATE TABLE uhrwerk_members (
    node TEXT COLLATE "C" PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Aborts the transaction unless `shard`'s epoch is `held`. FOR KEY SHARE makes a takeover
-- (which locks the row FOR UPDATE before bumping the epoch) wait until this transaction ends,
-- and this one wait for a takeover in progress: once a takeover committed, no commit under the
-- old epoch can. Lease renewals (plain UPDATEs of the expiry) do not conflict with it.
CREATE FUNCTION uw_check_fence(shard INTEGER, held BIGINT) RETURNS VOID AS $$
DECLARE
    current_epoch BIGINT;
BEGIN
    SELECT epoch INTO current_epoch FROM uhrwerk_shards WHERE shard_id = shard FOR KEY SHARE;
    IF current_epoch IS DISTINCT FROM held THEN
        RAISE EXCEPTION 'shard % is at epoch %, this node holds epoch %', shard, current_epoch, held
            USING ERRCODE = 'UW001';
    END IF;
END
$$ LANGUAGE plpgsql;
