-- The change log's index on (student_id, seq) cost every write an index
-- entry and served no query: audit.list by student reads the log from its
-- end. The index on (promotion_id, seq) stays, for audit.list by promotion.
DROP INDEX IF EXISTS changes_student;
