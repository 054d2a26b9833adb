-- Concepts (stage 2), deduplication (stage 3) and what the document lifecycle needs.

-- Concept phrases at three abstraction levels, one row per (level, normalised name).
CREATE TABLE concepts (
    id         uuid PRIMARY KEY,              -- uuid5(level, normalised name)
    name       text NOT NULL,
    normalised text NOT NULL,
    level      text NOT NULL CHECK (level IN ('high', 'medium', 'low')),
    embedding  vector({dimensions}) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (level, normalised)
);
CREATE INDEX concepts_embedding ON concepts USING hnsw (embedding vector_cosine_ops);

-- Element -> concept, with the triples that gave the element its context when it was conceptualised.
CREATE TABLE conceptualizations (
    element_id       uuid NOT NULL,           -- a node or a relation
    element_kind     text NOT NULL CHECK (element_kind IN ('node', 'relation')),
    concept_id       uuid NOT NULL REFERENCES concepts (id) ON DELETE CASCADE,
    confidence       real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    context_triples  uuid[] NOT NULL DEFAULT '{}',
    job_id           uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (element_id, concept_id)
);
CREATE INDEX conceptualizations_concept ON conceptualizations (concept_id);

-- An element is conceptualised once, even when it yields no concept.
ALTER TABLE nodes ADD COLUMN conceptualized_at timestamptz;
ALTER TABLE relations ADD COLUMN conceptualized_at timestamptz;

-- Other names of a node that absorbed near-identical entities.
ALTER TABLE nodes ADD COLUMN aliases text[] NOT NULL DEFAULT '{}';

-- Every merge, for audit; `redirect_to` follows later merges of the kept row, so that a re-ingest
-- that finds a merged triple or node again lands on the row that absorbed it.
CREATE TABLE dedup_merges (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('triple', 'node')),
    kept_id     uuid NOT NULL,
    merged_id   uuid NOT NULL,
    redirect_to uuid NOT NULL,
    similarity  real NOT NULL,
    method      text NOT NULL CHECK (method IN ('exact', 'semantic')),
    merged_text text NOT NULL,
    job_id      uuid,
    merged_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dedup_merges_merged ON dedup_merges (kind, merged_id);
CREATE INDEX dedup_merges_redirect ON dedup_merges (redirect_to);

CREATE INDEX triples_relation ON triples (relation_id);
CREATE INDEX triples_created ON triples (created_at);
