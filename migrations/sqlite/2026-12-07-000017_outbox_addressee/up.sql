-- What the worker needs of an email's invitation, kept on the email: its
-- wave, its person and its language (an invitation never changes them).
-- A claim then reads the outbox and the people, not the invitations too:
-- those lookups were most of a claim's read. The person's name and address
-- still come from `people` when the email is claimed, so a corrected
-- address is the one used. (SQLite adds a NOT NULL column only with a
-- default; every row gets its value below, and new rows always name it.)
-- An email whose invitation is gone could never be claimed (the claim
-- joined the invitation): nothing is lost with it.
DELETE FROM outbox WHERE invitation_id NOT IN (SELECT id FROM invitations);
ALTER TABLE outbox ADD COLUMN wave_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN person_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN language TEXT NOT NULL DEFAULT '';
UPDATE outbox SET
    wave_id = (SELECT wave_id FROM invitations WHERE invitations.id = outbox.invitation_id),
    person_id = (SELECT person_id FROM invitations WHERE invitations.id = outbox.invitation_id),
    language = (SELECT language FROM invitations WHERE invitations.id = outbox.invitation_id);
