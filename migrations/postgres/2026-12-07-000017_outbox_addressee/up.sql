-- What the worker needs of an email's invitation, kept on the email: its
-- wave, its person and its language (an invitation never changes them).
-- A claim then reads the outbox and the people, not the invitations too:
-- those lookups were most of a claim's read. The person's name and address
-- still come from `people` when the email is claimed, so a corrected
-- address is the one used.
ALTER TABLE outbox ADD COLUMN wave_id TEXT;
ALTER TABLE outbox ADD COLUMN person_id TEXT;
ALTER TABLE outbox ADD COLUMN language TEXT;
UPDATE outbox SET
    wave_id = invitations.wave_id,
    person_id = invitations.person_id,
    language = invitations.language
FROM invitations
WHERE invitations.id = outbox.invitation_id;
-- An email whose invitation is gone could never be claimed (the claim
-- joined the invitation): nothing is lost with it.
DELETE FROM outbox WHERE wave_id IS NULL;
ALTER TABLE outbox ALTER COLUMN wave_id SET NOT NULL;
ALTER TABLE outbox ALTER COLUMN person_id SET NOT NULL;
ALTER TABLE outbox ALTER COLUMN language SET NOT NULL;
