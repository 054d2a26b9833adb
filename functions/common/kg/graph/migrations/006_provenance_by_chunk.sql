-- Deleting or replacing a document deletes its chunks, and the cascade looks up provenance by
-- chunk: chunk_id is only the second column of the primary key, so it gets its own index.
CREATE INDEX triple_provenance_chunk ON triple_provenance (chunk_id);
