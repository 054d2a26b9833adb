-- The job ledger of the local engine (in AWS the ledger is DynamoDB and these stay empty).

CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    source        text NOT NULL,
    document_id   uuid,
    status        text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'PARTIAL', 'FAILED')),
    stage         text NOT NULL,
    progress      integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    chunks_total  integer NOT NULL DEFAULT 0,
    chunks_done   integer NOT NULL DEFAULT 0,
    chunks_failed integer NOT NULL DEFAULT 0,
    counts        jsonb NOT NULL DEFAULT '{}',
    llm           jsonb NOT NULL DEFAULT '{}',
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_created ON jobs (created_at DESC);

CREATE TABLE job_chunks (
    job_id     uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx        integer NOT NULL,
    status     text NOT NULL,
    error      text,
    triples    integer NOT NULL DEFAULT 0,
    llm        jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, idx)
);
