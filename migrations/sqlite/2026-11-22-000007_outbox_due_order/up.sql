-- The worker takes due emails in (next_attempt_at, id) order. With `id` in
-- the index a claim reads its batch straight off the index; without it,
-- every claim sorted every due email of the wave first. `claimed_by` has
-- no index on purpose: a claim then changes no indexed column (on
-- PostgreSQL a HOT update where the page has room), and only a shutdown
-- looks rows up by claim.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
