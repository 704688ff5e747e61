DROP TABLE results;
DROP TABLE publications;
