-- The graph: documents and chunks, nodes (entities, events, emotions), relations, triples,
-- provenance. {dimensions} is the embedding dimension the store was created for (kg_meta).

CREATE TABLE documents (
    id           uuid PRIMARY KEY,
    source       text NOT NULL UNIQUE,
    source_type  text NOT NULL,
    source_date  timestamptz,
    content_hash text NOT NULL,
    chars        integer NOT NULL,
    tokens       integer NOT NULL,
    job_id       uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chunks (
    id           text PRIMARY KEY,            -- '<document id>:<index>'
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    idx          integer NOT NULL,
    start_char   integer NOT NULL,
    end_char     integer NOT NULL,
    tokens       integer NOT NULL,
    content_hash text NOT NULL,
    text         text NOT NULL,
    UNIQUE (document_id, idx)
);

CREATE TABLE nodes (
    id         uuid PRIMARY KEY,              -- uuid5(kind, normalised name)
    kind       text NOT NULL CHECK (kind IN ('entity', 'event', 'emotion')),
    name       text NOT NULL,
    normalised text NOT NULL,
    embedding  vector({dimensions}) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, normalised)
);

CREATE TABLE relations (
    id         uuid PRIMARY KEY,              -- uuid5(normalised predicate)
    name       text NOT NULL,
    normalised text NOT NULL UNIQUE,
    embedding  vector({dimensions}) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE triples (
    id          uuid PRIMARY KEY,             -- uuid5(type, normalised subject, predicate, object)
    type        text NOT NULL CHECK (type IN ('ENTITY_ENTITY', 'ENTITY_EVENT', 'EVENT_EVENT', 'EMOTIONAL_CONTEXT')),
    subject_id  uuid NOT NULL REFERENCES nodes (id),
    relation_id uuid NOT NULL REFERENCES relations (id),
    object_id   uuid NOT NULL REFERENCES nodes (id),
    subject     text NOT NULL,
    predicate   text NOT NULL,
    object      text NOT NULL,
    statement   text NOT NULL,
    confidence  real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    embedding   vector({dimensions}) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triples_type ON triples (type);
CREATE INDEX triples_subject ON triples (subject_id);
CREATE INDEX triples_object ON triples (object_id);

-- Which chunk of which document supports a triple; the job that first found it there.
CREATE TABLE triple_provenance (
    triple_id   uuid NOT NULL REFERENCES triples (id) ON DELETE CASCADE,
    chunk_id    text NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    job_id      uuid NOT NULL,
    confidence  real NOT NULL,
    PRIMARY KEY (triple_id, chunk_id)
);
CREATE INDEX triple_provenance_document ON triple_provenance (document_id);

CREATE INDEX nodes_embedding ON nodes USING hnsw (embedding vector_cosine_ops);
CREATE INDEX relations_embedding ON relations USING hnsw (embedding vector_cosine_ops);
CREATE INDEX triples_embedding ON triples USING hnsw (embedding vector_cosine_ops);
