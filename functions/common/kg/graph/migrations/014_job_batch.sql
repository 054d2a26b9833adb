-- Batch mode (issue 13): a job may send its LLM requests through the provider's Batch API and wait
-- for the answers (WAITING, up to a day), its process polling the batch and renewing its lease. The
-- batch's id is kept on the job: `kg status` shows it, and a resumed job polls that batch again
-- instead of sending a second one.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'WAITING', 'INTERRUPTED', 'SUCCEEDED', 'PARTIAL', 'FAILED'));
ALTER TABLE jobs ADD COLUMN batch_id text;
