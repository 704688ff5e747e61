-- The outbox worker claims rows for a while (a lease) before sending them,
-- so that workers on several replicas never take the same email; a lease
-- that runs out (a crashed worker) frees the row again.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMP;

-- When a wave closes, its emails' delivery counts are kept here and its
-- outbox rows deleted: who got a reminder is who had not answered by then.
ALTER TABLE waves ADD COLUMN delivery TEXT;
