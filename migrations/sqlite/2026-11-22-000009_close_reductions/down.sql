ALTER TABLE responses DROP COLUMN scope;
ALTER TABLE wave_teams DROP COLUMN responded;
