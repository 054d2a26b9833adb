-- How many times each chunk's extraction was recorded: 1 for a chunk extracted once, more when a
-- resumed job or a retried Map iteration extracted it again. Plan rows (PENDING) start at 0.
ALTER TABLE job_chunks ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
