-- Anonymous answers (src/answers/mod.rs says how they stay anonymous).
-- Nothing here names a person or an invitation, and there is no time:
-- `id` is random, `team_id` the team the answer counts for, `nullifier`
-- (a keyed hash that makes a link single-use) lives only while the wave is
-- open. WITHOUT ROWID: rows are kept in the order of their random ids, so
-- no rowid counts the order in which people answered.
CREATE TABLE responses (
    id TEXT PRIMARY KEY NOT NULL,
    wave_id TEXT NOT NULL REFERENCES waves (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    answers TEXT NOT NULL,
    nullifier TEXT UNIQUE
) WITHOUT ROWID;
CREATE INDEX responses_wave ON responses (wave_id);
