-- What a wave's close reduces to (src/answers/mod.rs, DESIGN.md invariant 1).
-- Participation, counted at close from the per-person "answered" flags
-- (which are then cleared), per group of at least k invited: a team's own
-- members ('team'), what is left of a team's subtree ('subtree'), or the
-- rest of the organisation ('organisation', `team_id` holding its id).
-- Groups are formed as for responses (src/answers/coarsen.rs), from the
-- invited counts, so no stored count is about fewer than k people.
CREATE TABLE wave_participation (
    wave_id TEXT NOT NULL REFERENCES waves (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('team', 'subtree', 'organisation')),
    invited INTEGER NOT NULL,
    responded INTEGER NOT NULL,
    PRIMARY KEY (wave_id, team_id, scope)
);
-- `scope`: what a response's `team_id` stands for, with the same three
-- meanings. Set at close, so that no tag holds fewer than k responses.
ALTER TABLE responses ADD COLUMN scope TEXT NOT NULL DEFAULT 'team'
    CHECK (scope IN ('team', 'subtree', 'organisation'));
