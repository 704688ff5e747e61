ALTER TABLE outbox
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN claimed_by TYPE TEXT COLLATE "default";
