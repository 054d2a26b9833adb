-- Whether the chunk that supports a triple contains its subject and object (KG_GROUNDING=flag keeps
-- the ones that do not, marked here, instead of dropping them).
ALTER TABLE triple_provenance ADD COLUMN grounded boolean NOT NULL DEFAULT true;
