-- Search (kg.search): the lexical half of each ranked list is a trigram match (pg_trgm), served by
-- GIN indexes on the texts the vectors are made from; the vector half uses the HNSW indexes of 001
-- and 004. pg_trgm ships with PostgreSQL (contrib), with the embedded server and with Aurora.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX nodes_name_trgm ON nodes USING gin (normalised gin_trgm_ops);
CREATE INDEX relations_name_trgm ON relations USING gin (normalised gin_trgm_ops);
CREATE INDEX concepts_name_trgm ON concepts USING gin (normalised gin_trgm_ops);
CREATE INDEX triples_statement_trgm ON triples USING gin (statement gin_trgm_ops);


-- A concept's members of one kind, read from the index alone (search walks a concept's nodes and
-- its relations separately, and counts them first).
CREATE INDEX conceptualizations_concept_kind ON conceptualizations (concept_id, element_kind, element_id);
DROP INDEX conceptualizations_concept;
