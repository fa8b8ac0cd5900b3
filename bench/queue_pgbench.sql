-- The database limit of `make bench-queue`: the statements the queue service sends for one window's cycle,
-- issue-ticket -> call-next -> start -> finish, in its order, one transaction per request (pgbench -M prepared).
--
-- Read from PostgreSQL's log (log_statement = all; `queue_bench.py --show-statements` prints it) and written
-- here by hand; bench/queue_bench.py checks at start-up that every endpoint still sends as many statements as
-- its section below has (the lines ending in ";" or "\gset"), and says so when one does not.
--
-- What differs from the service, and why:
--   * values the service computes in Python are SQL here: now() for its clock, gen_random_uuid() for event
--     ids, the ticket number and lookup code as plain expressions;
--   * the envelopes are the JSON of real events of the same types (-D env_*), taken from the outbox;
--   * call-next: the service reads the waiting line (the snapshot), picks a ticket with the calling rule in
--     Python, then takes that ticket by id (FOR UPDATE SKIP LOCKED inside its UPDATE). pgbench cannot run the
--     rule, so after the same snapshot its "take" calls the oldest unlocked waiting ticket in one statement.
--
-- Variables: -D day=YYYY-MM-DD (the local business date), -D centres=N, -D base=<first centre id - 1>,
-- -D env_issued/env_waiting/env_called/env_started/env_finished. Client c plays window c / N + 1 of centre
-- base + c % N + 1, as a wrk connection plays one window.

\set cid :base + :client_id % :centres + 1
\set win :client_id / :centres + 1

-- endpoint: issue (POST /centers/{center}/tickets)
BEGIN;
SELECT c.settings::text AS settings, c.schedule::text AS schedule,
       s.center_id, s.code, s.name, s.prefix, s.department, s.wait_threshold_minutes,
       s.default_service_minutes, s.daily_limit_per_person, s.active, s.updated_at,
       EXISTS (SELECT 1 FROM business_days d
               WHERE d.center_id = CAST(:cid AS text) AND d.business_date = CAST(:day AS date)
                 AND d.closed_at IS NOT NULL AND (d.opened_at IS NULL OR d.opened_at < d.closed_at)) AS day_closed
FROM centers c LEFT JOIN services s ON s.center_id = c.id AND s.code = 'HJ'
WHERE c.id = CAST(:cid AS text);
SELECT count(*) FROM tickets t
WHERE t.center_id = CAST(:cid AS text) AND t.business_date = CAST(:day AS date) AND t.status = 'waiting'
  AND t.transferred_to_window IS NULL AND coalesce(t.transferred_to_service, t.service_code) = 'HJ'
  AND ('walk_in' <> 'green' OR t.transferred_to_service IS NOT NULL OR t.kind = 'green'
       OR (t.kind = 'appointment' AND t.slot_start <= now()));
SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.ended_at - t.started_at))
        FROM tickets t
        WHERE t.center_id = CAST(:cid AS text) AND t.service_code = 'HJ' AND t.status = 'done'
          AND t.ended_at >= now() - interval '2 hours' AND t.started_at IS NOT NULL) AS median,
       (SELECT count(*) FROM windows w JOIN window_services ws ON ws.center_id = w.center_id AND ws."window" = w.number
        WHERE w.center_id = CAST(:cid AS text) AND w.state = 'open' AND ws.service_code = 'HJ' AND ws.weight > 0)
       AS windows;
-- (':' || 'HJ' because pgbench takes ':HJ' for a variable, inside quotes too)
WITH n AS (
    INSERT INTO daily_counters (scope, business_date, value)
    VALUES ('ticket:' || CAST(:cid AS text) || ':' || 'HJ', CAST(:day AS date), 1)
    ON CONFLICT (scope, business_date) DO UPDATE SET value = daily_counters.value + 1
    RETURNING value
)
INSERT INTO tickets (center_id, business_date, service_code, seq, number, lookup_code, kind, channel, status,
                     duty_only, issued_at, effective_arrival, id_number_hash, id_number_masked, phone_hash,
                     phone_masked, phone_encrypted)
SELECT CAST(:cid AS text), CAST(:day AS date), 'HJ', n.value,
       'A' || lpad(n.value::text, greatest(3, length(n.value::text)), '0'), 'PGBNCH', 'walk_in', 'kiosk', 'waiting',
       false, now(), now(), NULL, NULL, NULL, NULL, NULL
FROM n
RETURNING *;
SELECT pg_advisory_xact_lock(hashtext('queue.waiting:' || CAST(:cid AS text)));
SELECT s.code, (SELECT count(*) FROM tickets t
                WHERE t.center_id = CAST(:cid AS text) AND t.business_date = CAST(:day AS date)
                  AND t.status = 'waiting' AND t.service_code = s.code) AS waiting
FROM services s WHERE s.center_id = CAST(:cid AS text) ORDER BY s.code;
WITH given AS (
    SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS sequence, r.*
    FROM unnest(ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['ticket.issued', 'queue.waiting_counts'],
                ARRAY['hall.queue.v1', 'hall.queue.v1'], ARRAY[CAST(:cid AS text), CAST(:cid AS text)],
                ARRAY[NULL, NULL]::text[], ARRAY[CAST(:env_issued AS text), CAST(:env_waiting AS text)],
                ARRAY[now(), now()])
         WITH ORDINALITY AS r(id, type, topic, key, reference_key, envelope, created_at, n)
    ORDER BY r.n
)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT given.sequence, given.id, given.type, given.topic, given.key, given.reference_key,
       jsonb_set(CAST(given.envelope AS jsonb), '{sequence}', to_jsonb(given.sequence)), given.created_at
FROM given CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
ORDER BY given.n
RETURNING id, sequence;
COMMIT;

-- endpoint: call-next (POST /centers/{center}/windows/{window}/call-next)
BEGIN;
SELECT settings::text, schedule::text FROM centers WHERE id = CAST(:cid AS text);
SELECT w."center_id", w."number", w."name", w."department", w."duty", w."joint_approval", w."a_clerk", w."b_clerk",
       w."active", w."state", w."clerk_id", w."post", w."device", w."priority_streak", w."active_ticket_id",
       w."updated_at",
       (SELECT json_object_agg(ws.service_code, ws.weight)::text FROM window_services ws
        WHERE ws.center_id = w.center_id AND ws."window" = w.number) AS weights,
       (SELECT t.number FROM tickets t WHERE t.id = w.active_ticket_id) AS active_number,
       st.id AS staff_id, st.display_name, st.post_title, st.photo_url
FROM windows w LEFT JOIN staff st ON st.id = w.clerk_id
WHERE w.center_id = CAST(:cid AS text) AND w.number = CAST(:win AS text)
FOR UPDATE OF w;
SELECT t.id, t.service_code, t.kind, t.effective_arrival, t.duty_only, t.transferred_at,
       t.transferred_to_window, t.transferred_to_service, t.slot_start, t.checked_in_at
FROM tickets t
WHERE t.center_id = CAST(:cid AS text) AND t.business_date = CAST(:day AS date) AND t.status = 'waiting'
  AND ((t.service_code = ANY(ARRAY['HJ']) AND t.transferred_to_window IS NULL AND t.transferred_to_service IS NULL)
       OR t.transferred_to_window = CAST(:win AS text) OR t.transferred_to_service = ANY(ARRAY['HJ']))
ORDER BY t.effective_arrival, t.id;
UPDATE tickets t SET status = 'called', "window" = CAST(:win AS text),
       clerk_id = 'clerk-' || CAST(:cid AS text) || '-' || CAST(:win AS text), post = 'A', called_at = now()
WHERE t.id = (SELECT id FROM tickets
              WHERE center_id = CAST(:cid AS text) AND business_date = CAST(:day AS date) AND status = 'waiting'
              ORDER BY effective_arrival, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING t."id", t."center_id", t."business_date", t."service_code", t."seq", t."number", t."lookup_code",
          t."kind", t."channel", t."status", t."duty_only", t."issued_at", t."effective_arrival", t."id_number_hash",
          t."id_number_masked", t."phone_hash", t."phone_masked", t."phone_encrypted", t."appointment_id",
          t."slot_start", t."checked_in_at", t."transferred_at", t."transferred_to_window",
          t."transferred_to_service", t."window", t."clerk_id", t."post", t."called_at", t."recalls", t."requeues",
          t."started_at", t."ended_at", t."served_s",
          (SELECT s.department FROM services s WHERE s.center_id = t.center_id AND s.code = t.service_code)
          AS department \gset t_
UPDATE windows SET active_ticket_id = :t_id, priority_streak = 0, updated_at = now()
WHERE center_id = CAST(:cid AS text) AND number = CAST(:win AS text);
SELECT pg_advisory_xact_lock(hashtext('queue.waiting:' || CAST(:cid AS text)));
SELECT s.code, (SELECT count(*) FROM tickets t
                WHERE t.center_id = CAST(:cid AS text) AND t.business_date = CAST(:day AS date)
                  AND t.status = 'waiting' AND t.service_code = s.code) AS waiting
FROM services s WHERE s.center_id = CAST(:cid AS text) ORDER BY s.code;
WITH given AS (
    SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS sequence, r.*
    FROM unnest(ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['ticket.called', 'queue.waiting_counts'],
                ARRAY['hall.queue.v1', 'hall.queue.v1'], ARRAY[CAST(:cid AS text), CAST(:cid AS text)],
                ARRAY[NULL, NULL]::text[], ARRAY[CAST(:env_called AS text), CAST(:env_waiting AS text)],
                ARRAY[now(), now()])
         WITH ORDINALITY AS r(id, type, topic, key, reference_key, envelope, created_at, n)
    ORDER BY r.n
)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT given.sequence, given.id, given.type, given.topic, given.key, given.reference_key,
       jsonb_set(CAST(given.envelope AS jsonb), '{sequence}', to_jsonb(given.sequence)), given.created_at
FROM given CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
ORDER BY given.n
RETURNING id, sequence;
COMMIT;

-- endpoint: start (POST /tickets/{id}/start)
BEGIN;
SELECT t."id", t."center_id", t."business_date", t."service_code", t."seq", t."number", t."lookup_code", t."kind",
       t."channel", t."status", t."duty_only", t."issued_at", t."effective_arrival", t."id_number_hash",
       t."id_number_masked", t."phone_hash", t."phone_masked", t."phone_encrypted", t."appointment_id",
       t."slot_start", t."checked_in_at", t."transferred_at", t."transferred_to_window", t."transferred_to_service",
       t."window", t."clerk_id", t."post", t."called_at", t."recalls", t."requeues", t."started_at", t."ended_at",
       t."served_s",
       (SELECT s.department FROM services s WHERE s.center_id = t.center_id AND s.code = t.service_code)
       AS department
FROM tickets t WHERE t.id = :t_id
FOR UPDATE OF t;
SELECT w."center_id", w."number", w."name", w."department", w."duty", w."joint_approval", w."a_clerk", w."b_clerk",
       w."active", w."state", w."clerk_id", w."post", w."device", w."priority_streak", w."active_ticket_id",
       w."updated_at"
FROM windows w WHERE w.center_id = CAST(:cid AS text) AND w.number = CAST(:win AS text) FOR UPDATE;
UPDATE tickets SET status = 'serving', started_at = now() WHERE id = :t_id;
WITH given AS (
    SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS sequence, r.*
    FROM unnest(ARRAY[gen_random_uuid()], ARRAY['ticket.started'], ARRAY['hall.queue.v1'],
                ARRAY[CAST(:cid AS text)], ARRAY[NULL]::text[], ARRAY[CAST(:env_started AS text)], ARRAY[now()])
         WITH ORDINALITY AS r(id, type, topic, key, reference_key, envelope, created_at, n)
    ORDER BY r.n
)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT given.sequence, given.id, given.type, given.topic, given.key, given.reference_key,
       jsonb_set(CAST(given.envelope AS jsonb), '{sequence}', to_jsonb(given.sequence)), given.created_at
FROM given CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
ORDER BY given.n
RETURNING id, sequence;
COMMIT;

-- endpoint: finish (POST /tickets/{id}/finish)
BEGIN;
SELECT t."id", t."center_id", t."business_date", t."service_code", t."seq", t."number", t."lookup_code", t."kind",
       t."channel", t."status", t."duty_only", t."issued_at", t."effective_arrival", t."id_number_hash",
       t."id_number_masked", t."phone_hash", t."phone_masked", t."phone_encrypted", t."appointment_id",
       t."slot_start", t."checked_in_at", t."transferred_at", t."transferred_to_window", t."transferred_to_service",
       t."window", t."clerk_id", t."post", t."called_at", t."recalls", t."requeues", t."started_at", t."ended_at",
       t."served_s",
       (SELECT s.department FROM services s WHERE s.center_id = t.center_id AND s.code = t.service_code)
       AS department
FROM tickets t WHERE t.id = :t_id
FOR UPDATE OF t;
SELECT w."center_id", w."number", w."name", w."department", w."duty", w."joint_approval", w."a_clerk", w."b_clerk",
       w."active", w."state", w."clerk_id", w."post", w."device", w."priority_streak", w."active_ticket_id",
       w."updated_at"
FROM windows w WHERE w.center_id = CAST(:cid AS text) AND w.number = CAST(:win AS text) FOR UPDATE;
UPDATE tickets SET status = 'done', ended_at = now() WHERE id = :t_id;
UPDATE windows SET active_ticket_id = NULL, updated_at = now()
WHERE center_id = CAST(:cid AS text) AND number = CAST(:win AS text);
WITH given AS (
    SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS sequence, r.*
    FROM unnest(ARRAY[gen_random_uuid()], ARRAY['ticket.finished'], ARRAY['hall.queue.v1'],
                ARRAY[CAST(:cid AS text)], ARRAY[NULL]::text[], ARRAY[CAST(:env_finished AS text)], ARRAY[now()])
         WITH ORDINALITY AS r(id, type, topic, key, reference_key, envelope, created_at, n)
    ORDER BY r.n
)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT given.sequence, given.id, given.type, given.topic, given.key, given.reference_key,
       jsonb_set(CAST(given.envelope AS jsonb), '{sequence}', to_jsonb(given.sequence)), given.created_at
FROM given CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
ORDER BY given.n
RETURNING id, sequence;
COMMIT;
