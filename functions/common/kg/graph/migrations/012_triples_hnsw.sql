-- The statements' HNSW index, built with a wider candidate list (ef_construction 200; pgvector's
-- default is 64). Triple statements crowd together (a subject's many facts), and at 100,000
-- triples the default build found 0.865 of the exact ten nearest at ef_search 100, against 0.94
-- to 0.96 with this one (BENCHMARKS.md §8). Node, relation and concept indexes keep the default:
-- their recall is above 0.95 already, and every build setting costs insert time.
DROP INDEX IF EXISTS triples_embedding;
CREATE INDEX triples_embedding ON triples USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
