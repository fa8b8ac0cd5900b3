-- The database limit of `make bench-cases`: the statements the cases service sends for one case registration
-- (POST /cases: services/cases/statements.py item_for_accept and insert_case, then shared/events/outbox.py
-- publish_all), in its order, one transaction per request (pgbench -M prepared; asyncpg prepares too).
--
-- Read from PostgreSQL's log (log_statement = all; `cases_bench.py --show-statements` prints it) and written
-- here by hand; bench/cases_bench.py checks at start-up that a registration still sends as many statements as
-- this script has (the lines ending in ";" or "\gset"), and says so when it does not.
--
-- What differs from the service, and why:
--   * values the service computes in Python are SQL or constants here: now() for its clock, gen_random_uuid()
--     for the event id; the due dates, the applicant's keyed hashes, masks and encrypted forms, the lookup
--     code's hash (a new code per case in the service), the audit entry's details and the case.accepted
--     envelope are the probe case's (-D), the same for every case here;
--   * the pool's pre-ping (SQLAlchemy's pool_pre_ping: BEGIN, an empty statement, ROLLBACK before each
--     checkout), when it is on, is not here: it is the pool's, not the route's (the bench prints it).
--
-- Variables: -D day=YYYY-MM-DD (the local business date), -D centres=N, -D base=<first centre id - 1>, and the
-- probe case's values (-D due_at, legal_due_at, warn_at, lookup_hash, name_masked, name_enc, applicant_hash,
-- id_masked, id_enc, phone_hash, phone_masked, phone_enc as hex for bytea, details, envelope). Client c
-- registers in centre base + c % N + 1 as its clerk clerk-<centre>-1.

\set cid :base + :client_id % :centres + 1

BEGIN;
SELECT i.code, i.name, i.department, i.kind, i.legal_limit_days, i.promised_limit_days, i.stages::text AS stages,
       i.warn_days, i.max_extension_days, i.forward_followup_days, i.special_limit_days, i.active,
       (SELECT s.display_name FROM staff s WHERE s.id = 'clerk-' || CAST(:cid AS text) || '-1') AS handler_name
FROM items i WHERE i.center_id = CAST(:cid AS text) AND i.code = 'HJ0101';
WITH n AS (
    INSERT INTO daily_counters (scope, business_date, value) VALUES ('case:' || CAST(:cid AS text), CAST(:day AS date), 1)
    ON CONFLICT (scope, business_date) DO UPDATE SET value = daily_counters.value + 1
    RETURNING value
), c AS (
    INSERT INTO cases (case_no, "center_id", "item_code", "item_name", "department", "kind", "status", "stages",
                       "stage_index", "stage_started_on", "lookup_code_hash", "source", "ticket_id", "notice_no",
                       "materials", "accepted_at", "accepted_on", "promised_limit_days", "legal_limit_days",
                       "warn_days", "extension_days", "max_extension_days", "special_limit_days",
                       "forward_followup_days", "due_at", "legal_due_at", "warn_at", "stage_due_at", "clock_version",
                       "supplement_count", "special_count", "expedited", "handler_id", "handler_name", "window",
                       "applicant_name_masked", "applicant_name_encrypted", "applicant_hash", "id_number_masked",
                       "id_number_encrypted", "phone_hash", "phone_masked", "phone_encrypted", "org", "imported",
                       "overdue_at_import", "created_at", "updated_at")
    SELECT CAST(:cid AS text) || '-' || to_char(CAST(:day AS date), 'YYYYMMDD') || '-'
               || lpad(n.value::text, greatest(6, length(n.value::text)), '0'),
           CAST(:cid AS text), 'HJ0101', '户籍迁移 HJ0101', 'gov-ga', 'promised', 'in_progress', CAST('[]' AS jsonb), 0,
           CAST(:day AS date), CAST(:lookup_hash AS text), 'window', NULL, NULL, CAST('["身份证"]' AS jsonb), now(),
           CAST(:day AS date), 5, 20, 1, 0, 10, 10, 20, CAST(:due_at AS timestamptz),
           CAST(:legal_due_at AS timestamptz), CAST(NULLIF(CAST(:warn_at AS text), '') AS timestamptz), NULL, 1, 0, 0,
           false, 'clerk-' || CAST(:cid AS text) || '-1', '王小明', '1', CAST(:name_masked AS text),
           decode(CAST(:name_enc AS text), 'hex'), CAST(:applicant_hash AS text), CAST(:id_masked AS text),
           decode(CAST(:id_enc AS text), 'hex'), CAST(:phone_hash AS text), CAST(:phone_masked AS text),
           decode(CAST(:phone_enc AS text), 'hex'), NULL, false, false, now(), now()
    FROM n
    RETURNING case_no, accepted_at
), h AS (
    INSERT INTO case_history (case_no, at, actor_id, actor_role, action, from_status, to_status, from_stage,
                              to_stage, reason, details)
    SELECT c.case_no, now(), 'clerk-' || CAST(:cid AS text) || '-1', 'clerk', 'accept', NULL, 'in_progress', NULL,
           '办理', NULL, CAST(:details AS jsonb)
    FROM c
)
SELECT case_no FROM c \gset
WITH given AS (
    SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS sequence, r.*
    FROM unnest(ARRAY[gen_random_uuid()], ARRAY['case.accepted'], ARRAY['hall.cases.v1'], ARRAY[CAST(:case_no AS text)],
                ARRAY[NULL]::text[], ARRAY[CAST(:envelope AS text)], ARRAY[now()])
         WITH ORDINALITY AS r(id, type, topic, key, reference_key, envelope, created_at, n)
    ORDER BY r.n
)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT given.sequence, given.id, given.type, given.topic, given.key, given.reference_key,
       jsonb_set(CAST(given.envelope AS jsonb), '{sequence}', to_jsonb(given.sequence)), given.created_at
FROM given CROSS JOIN (SELECT pg_notify('hall_outbox', 'cases')) AS wake
ORDER BY given.n
RETURNING id, sequence;
COMMIT;
