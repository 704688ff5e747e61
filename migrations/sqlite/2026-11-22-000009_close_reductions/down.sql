ALTER TABLE responses DROP COLUMN scope;
DROP TABLE wave_participation;
