ALTER TABLE outbox DROP COLUMN wave_id;
ALTER TABLE outbox DROP COLUMN person_id;
ALTER TABLE outbox DROP COLUMN language;
