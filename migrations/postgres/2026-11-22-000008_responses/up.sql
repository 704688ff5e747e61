-- Anonymous answers (src/answers/mod.rs says how they stay anonymous).
-- Nothing here names a person or an invitation, and there is no time:
-- `id` is random, `team_id` the team the answer counts for, `nullifier`
-- (a keyed hash that makes a link single-use) lives only while the wave is
-- open. When the wave closes its rows are rewritten in one transaction, in
-- random order, so neither `ctid` nor `xmin` keeps the order of answering.
CREATE TABLE responses (
    id TEXT PRIMARY KEY NOT NULL,
    wave_id TEXT NOT NULL REFERENCES waves (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    answers TEXT NOT NULL,
    nullifier TEXT UNIQUE
);
CREATE INDEX responses_wave ON responses (wave_id);
