-- Which job made each concept and conceptualized each element, so that the concepts stage's counts
-- are read from the graph (the same after a retry) rather than added up by one call.
ALTER TABLE concepts ADD COLUMN job_id uuid;
ALTER TABLE nodes ADD COLUMN conceptualized_by uuid;
ALTER TABLE relations ADD COLUMN conceptualized_by uuid;
CREATE INDEX concepts_job ON concepts (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX conceptualizations_job ON conceptualizations (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX nodes_conceptualized_by ON nodes (conceptualized_by) WHERE conceptualized_by IS NOT NULL;
CREATE INDEX relations_conceptualized_by ON relations (conceptualized_by) WHERE conceptualized_by IS NOT NULL;
CREATE INDEX dedup_merges_job ON dedup_merges (job_id) WHERE job_id IS NOT NULL;
