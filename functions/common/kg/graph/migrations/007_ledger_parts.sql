-- A later stage records its LLM usage per unit of work (a batch, a slice), so that a retried unit
-- replaces its own usage instead of the whole stage's; the stage's usage is the sum of its parts.

ALTER TABLE job_stage_llm ADD COLUMN part text NOT NULL DEFAULT '';
ALTER TABLE job_stage_llm DROP CONSTRAINT job_stage_llm_pkey;
ALTER TABLE job_stage_llm ADD PRIMARY KEY (job_id, stage, part);
