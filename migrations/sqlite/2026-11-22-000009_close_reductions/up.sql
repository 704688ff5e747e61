-- What a wave's close reduces (src/answers/mod.rs, DESIGN.md invariant 1).
-- `responded`: per team, how many invitations were answered, counted at
-- close from the per-person "answered" flags, which are then cleared; NULL
-- while the wave is open.
ALTER TABLE wave_teams ADD COLUMN responded INTEGER;
-- `scope`: what a response's `team_id` stands for. 'team': the team's own
-- members. 'subtree': somewhere in the team's subtree (its own members'
-- groups and its descendants' were too small). 'organisation': somewhere in
-- the organisation, whose id `team_id` then holds. Set at close, so that
-- no tag holds fewer than k responses.
ALTER TABLE responses ADD COLUMN scope TEXT NOT NULL DEFAULT 'team'
    CHECK (scope IN ('team', 'subtree', 'organisation'));
