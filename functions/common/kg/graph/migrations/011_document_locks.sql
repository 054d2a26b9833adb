-- Deletes and ingests cannot corrupt each other (docs/DESIGN.md, "Deleting and replacing documents").
-- The writers of a document are serialised by advisory locks (kg.graph.postgres); here the schema
-- makes sure that no path, locked or not, can leave a concept link to a deleted element.

-- 1. What a delete that raced the concepts stage left behind before this version: links to
--    elements that are gone, then the concepts (and their vectors, on the same rows) no link uses.
DELETE FROM conceptualizations e
WHERE (e.element_kind = 'node' AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.element_id))
   OR (e.element_kind = 'relation' AND NOT EXISTS (SELECT 1 FROM relations r WHERE r.id = e.element_id));
DELETE FROM concepts c WHERE NOT EXISTS (SELECT 1 FROM conceptualizations e WHERE e.concept_id = c.id);

-- 2. A link's element is a node or a relation: one generated column per kind, each a foreign key
--    that deletes the link with its element.
ALTER TABLE conceptualizations
    ADD COLUMN node_id uuid GENERATED ALWAYS AS (CASE WHEN element_kind = 'node' THEN element_id END) STORED
        REFERENCES nodes (id) ON DELETE CASCADE,
    ADD COLUMN relation_id uuid GENERATED ALWAYS AS (CASE WHEN element_kind = 'relation' THEN element_id END) STORED
        REFERENCES relations (id) ON DELETE CASCADE;
-- The cascades look links up by element.
CREATE INDEX conceptualizations_node ON conceptualizations (node_id) WHERE node_id IS NOT NULL;
CREATE INDEX conceptualizations_relation ON conceptualizations (relation_id) WHERE relation_id IS NOT NULL;

-- 3. A triple whose text an entity merge rewrote ("Royal Swedish Academy ..." -> "Swedish Royal
--    Academy ...") keeps its old vector until the stage that made the change embeds the new text.
ALTER TABLE triples ADD COLUMN vector_stale boolean NOT NULL DEFAULT false;
CREATE INDEX triples_vector_stale ON triples (id) WHERE vector_stale;
