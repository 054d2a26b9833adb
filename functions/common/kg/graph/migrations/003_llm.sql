-- The LLM response cache (keyed by a hash of model, prompt version, mode, type and input text),
-- and LLM usage per job and stage for the stages after extraction (extraction's usage is per
-- chunk in job_chunks.llm).

CREATE TABLE llm_cache (
    key           text PRIMARY KEY,            -- sha256 hex, see kg.llm.cache.cache_key
    model         text NOT NULL,
    content       text NOT NULL,               -- the raw JSON the model returned; re-validated on read
    input_tokens  integer NOT NULL DEFAULT 0,  -- what the original call cost, for reports
    output_tokens integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE job_stage_llm (
    job_id     uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage      text NOT NULL,
    llm        jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, stage)
);
