-- Only queued emails are claimed, so only they are indexed for the claim:
-- recording a row as sent (or failed, or cancelled) then takes it out of
-- this index instead of writing it into it again under its new status, and
-- a claim walks queued rows only. Queries must say `status = 'queued'` as a
-- literal for the planner to use it (a bound parameter cannot prove the
-- index's condition).
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'queued';
-- Room on every page (half: a batch claims every row of a page, rows are
-- written in id order), so that a claim (which changes no indexed column) is
-- a HOT update: a new row version on the same page and no new entry in any
-- index. A full page (COPY fills them) makes every claim write three index
-- entries, and later claims step over them.
ALTER TABLE outbox SET (fillfactor = 50);
