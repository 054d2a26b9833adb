-- Leases (issue 11): a local job is held by the process that runs it, which renews `lease_until`
-- from a background thread. A QUEUED or RUNNING job whose lease has lapsed reads INTERRUPTED (its
-- process died: kill -9, a lost machine, a database that stopped), and so does a job that its process
-- ended on SIGTERM or Ctrl-C, stored as INTERRUPTED. `kg resume` takes such a job over. A job without
-- a lease (the AWS engine's, whose jobs Step Functions ends) is never read as interrupted.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'INTERRUPTED', 'SUCCEEDED', 'PARTIAL', 'FAILED'));
ALTER TABLE jobs ADD COLUMN lease_owner text;
ALTER TABLE jobs ADD COLUMN lease_until timestamptz;

-- `kg ingest` looks up the latest job of a source (to point at one it could resume).
CREATE INDEX jobs_source ON jobs (source, created_at DESC);
