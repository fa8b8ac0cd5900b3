-- The database limit of `make bench-queue`: the statements the queue service sends for one window's cycle,
-- issue-ticket -> call-next -> start -> finish, in its order, one transaction per request (pgbench -M prepared).
--
-- Read from PostgreSQL's log (log_statement = all) while the service answered each endpoint once, and written
-- here by hand; bench/queue_bench.py checks at start-up that every endpoint still sends as many statements as
-- its section below has (the lines ending in ";" or "\gset"), and says so when one does not.
--
-- What differs from the service, and why:
--   * values the service computes in Python are SQL here: now() for its clock, gen_random_uuid() for event
--     ids, the ticket number and lookup code as plain expressions;
--   * the envelopes are the JSON of real events of the same types (-D env_*), taken from the outbox;
--   * call-next: the service reads the waiting line (the snapshot), picks a ticket with the calling rule in
--     Python, then locks that ticket by id (FOR UPDATE SKIP LOCKED). pgbench cannot run the rule, so after
--     the same snapshot its "take" locks the oldest unlocked waiting ticket in one statement;
--   * the empty statement of the pool's pre-ping (BEGIN; ";" ; ROLLBACK) is not in the log and not here.
--
-- Variables: -D day=YYYY-MM-DD (the local business date), -D centres=N, -D base=<first centre id - 1>,
-- -D env_issued/env_waiting/env_called/env_started/env_finished. Client c plays window c / N + 1 of centre
-- base + c % N + 1, as a wrk connection plays one window.

\set cid :base + :client_id % :centres + 1
\set win :client_id / :centres + 1

-- endpoint: issue (POST /centers/{center}/tickets)
BEGIN;
ROLLBACK;
BEGIN;
SELECT centers.id, centers.name, centers.address, centers.settings, centers.schedule, centers.created_at,
       centers.updated_at
FROM centers WHERE centers.id = CAST(:cid AS VARCHAR);
SELECT services.center_id, services.code, services.name, services.prefix, services.department,
       services.wait_threshold_minutes, services.default_service_minutes, services.daily_limit_per_person,
       services.slots, services.active, services.updated_at
FROM services WHERE services.center_id = CAST(:cid AS VARCHAR) AND services.code = 'HJ';
SELECT business_days.center_id, business_days.business_date, business_days.closed_at, business_days.closed_by,
       business_days.opened_at, business_days.opened_by
FROM business_days
WHERE business_days.center_id = CAST(:cid AS VARCHAR) AND business_days.business_date = CAST(:day AS DATE);
-- (':' || 'HJ' because pgbench takes ':HJ' for a variable, inside quotes too)
INSERT INTO daily_counters (scope, business_date, value)
VALUES ('ticket:' || CAST(:cid AS VARCHAR) || ':' || 'HJ', CAST(:day AS DATE), 1)
ON CONFLICT (scope, business_date) DO UPDATE SET value = (daily_counters.value + 1)
RETURNING daily_counters.value AS seq \gset
INSERT INTO tickets (center_id, business_date, service_code, seq, number, lookup_code, kind, channel, status,
                     duty_only, issued_at, effective_arrival, id_number_hash, id_number_masked, phone_hash,
                     phone_masked, phone_encrypted, appointment_id, slot_start, checked_in_at, transferred_at,
                     transferred_to_window, transferred_to_service, "window", clerk_id, post, called_at, started_at,
                     ended_at)
VALUES (CAST(:cid AS VARCHAR), CAST(:day AS DATE), 'HJ', :seq, 'A' || CAST(:seq AS VARCHAR), 'PGBNCH', 'walk_in',
        'kiosk', 'waiting', false, now(), now(), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL)
RETURNING tickets.id, tickets.recalls, tickets.requeues, tickets.served_s;
SELECT tickets.id, tickets.center_id, tickets.business_date, tickets.service_code, tickets.seq, tickets.number,
       tickets.lookup_code, tickets.kind, tickets.channel, tickets.status, tickets.duty_only, tickets.issued_at,
       tickets.effective_arrival, tickets.id_number_hash, tickets.id_number_masked, tickets.phone_hash,
       tickets.phone_masked, tickets.phone_encrypted, tickets.appointment_id, tickets.slot_start,
       tickets.checked_in_at, tickets.transferred_at, tickets.transferred_to_window, tickets.transferred_to_service,
       tickets."window", tickets.clerk_id, tickets.post, tickets.called_at, tickets.recalls, tickets.requeues,
       tickets.started_at, tickets.ended_at, tickets.served_s
FROM tickets
WHERE tickets.center_id = CAST(:cid AS VARCHAR) AND tickets.business_date = CAST(:day AS DATE)
  AND tickets.status = 'waiting';
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM tickets.ended_at - tickets.started_at))
       AS percentile_cont_1
FROM tickets
WHERE tickets.center_id = CAST(:cid AS VARCHAR) AND tickets.service_code = 'HJ' AND tickets.status = 'done'
  AND tickets.ended_at >= now() - interval '2 hours' AND tickets.started_at IS NOT NULL;
SELECT count(*) AS count_1
FROM windows JOIN window_services
  ON window_services.center_id = windows.center_id AND window_services."window" = windows.number
WHERE windows.center_id = CAST(:cid AS VARCHAR) AND windows.state = 'open' AND window_services.service_code = 'HJ'
  AND window_services.weight > 0;
WITH seq AS (SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS value)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT seq.value, gen_random_uuid(), 'ticket.issued', 'hall.queue.v1', CAST(:cid AS VARCHAR), NULL,
       jsonb_set(CAST(:env_issued AS jsonb), '{sequence}', to_jsonb(seq.value)), now()
FROM seq CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
RETURNING sequence;
SELECT pg_advisory_xact_lock(hashtext('queue.waiting:' || CAST(:cid AS VARCHAR)));
SELECT tickets.service_code, count(*) AS count_1
FROM tickets
WHERE tickets.center_id = CAST(:cid AS VARCHAR) AND tickets.business_date = CAST(:day AS DATE)
  AND tickets.status = 'waiting'
GROUP BY tickets.service_code;
SELECT services.center_id, services.code, services.name, services.prefix, services.department,
       services.wait_threshold_minutes, services.default_service_minutes, services.daily_limit_per_person,
       services.slots, services.active, services.updated_at
FROM services WHERE services.center_id = CAST(:cid AS VARCHAR) ORDER BY services.code;
WITH seq AS (SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS value)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT seq.value, gen_random_uuid(), 'queue.waiting_counts', 'hall.queue.v1', CAST(:cid AS VARCHAR), NULL,
       jsonb_set(CAST(:env_waiting AS jsonb), '{sequence}', to_jsonb(seq.value)), now()
FROM seq CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
RETURNING sequence;
COMMIT;

-- endpoint: call-next (POST /centers/{center}/windows/{window}/call-next)
BEGIN;
ROLLBACK;
BEGIN;
SELECT centers.id, centers.name, centers.address, centers.settings, centers.schedule, centers.created_at,
       centers.updated_at
FROM centers WHERE centers.id = CAST(:cid AS VARCHAR);
SELECT windows.center_id, windows.number, windows.name, windows.department, windows.duty, windows.joint_approval,
       windows.a_clerk, windows.b_clerk, windows.active, windows.state, windows.clerk_id, windows.post,
       windows.device, windows.priority_streak, windows.active_ticket_id, windows.updated_at
FROM windows WHERE windows.center_id = CAST(:cid AS VARCHAR) AND windows.number = CAST(:win AS VARCHAR)
FOR UPDATE;
SELECT window_services.service_code, window_services.weight
FROM window_services
WHERE window_services.center_id = CAST(:cid AS VARCHAR) AND window_services."window" = CAST(:win AS VARCHAR);
SELECT tickets.id, tickets.center_id, tickets.business_date, tickets.service_code, tickets.seq, tickets.number,
       tickets.lookup_code, tickets.kind, tickets.channel, tickets.status, tickets.duty_only, tickets.issued_at,
       tickets.effective_arrival, tickets.id_number_hash, tickets.id_number_masked, tickets.phone_hash,
       tickets.phone_masked, tickets.phone_encrypted, tickets.appointment_id, tickets.slot_start,
       tickets.checked_in_at, tickets.transferred_at, tickets.transferred_to_window, tickets.transferred_to_service,
       tickets."window", tickets.clerk_id, tickets.post, tickets.called_at, tickets.recalls, tickets.requeues,
       tickets.started_at, tickets.ended_at, tickets.served_s
FROM tickets
WHERE tickets.center_id = CAST(:cid AS VARCHAR) AND tickets.business_date = CAST(:day AS DATE)
  AND tickets.status = 'waiting';
SELECT tickets.id, tickets.center_id, tickets.business_date, tickets.service_code, tickets.seq, tickets.number,
       tickets.lookup_code, tickets.kind, tickets.channel, tickets.status, tickets.duty_only, tickets.issued_at,
       tickets.effective_arrival, tickets.id_number_hash, tickets.id_number_masked, tickets.phone_hash,
       tickets.phone_masked, tickets.phone_encrypted, tickets.appointment_id, tickets.slot_start,
       tickets.checked_in_at, tickets.transferred_at, tickets.transferred_to_window, tickets.transferred_to_service,
       tickets."window", tickets.clerk_id, tickets.post, tickets.called_at, tickets.recalls, tickets.requeues,
       tickets.started_at, tickets.ended_at, tickets.served_s
FROM tickets
WHERE tickets.center_id = CAST(:cid AS VARCHAR) AND tickets.business_date = CAST(:day AS DATE)
  AND tickets.status = 'waiting'
ORDER BY tickets.effective_arrival, tickets.id LIMIT 1
FOR UPDATE SKIP LOCKED \gset t_
SELECT services.center_id, services.code, services.name, services.prefix, services.department,
       services.wait_threshold_minutes, services.default_service_minutes, services.daily_limit_per_person,
       services.slots, services.active, services.updated_at
FROM services WHERE services.center_id = CAST(:cid AS VARCHAR) AND services.code = 'HJ';
SELECT staff.id, staff.display_name, staff.post_title, staff.photo_url, staff.role, staff.centers, staff.department,
       staff.active, staff.updated_at, staff.last_event_sequence
FROM staff WHERE staff.id = 'clerk-' || CAST(:cid AS VARCHAR) || '-' || CAST(:win AS VARCHAR);
UPDATE tickets SET status = 'called', "window" = CAST(:win AS VARCHAR),
       clerk_id = 'clerk-' || CAST(:cid AS VARCHAR) || '-' || CAST(:win AS VARCHAR), post = 'A', called_at = now()
WHERE tickets.id = :t_id;
UPDATE windows SET active_ticket_id = :t_id, updated_at = now()
WHERE windows.center_id = CAST(:cid AS VARCHAR) AND windows.number = CAST(:win AS VARCHAR);
WITH seq AS (SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS value)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT seq.value, gen_random_uuid(), 'ticket.called', 'hall.queue.v1', CAST(:cid AS VARCHAR), NULL,
       jsonb_set(CAST(:env_called AS jsonb), '{sequence}', to_jsonb(seq.value)), now()
FROM seq CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
RETURNING sequence;
SELECT pg_advisory_xact_lock(hashtext('queue.waiting:' || CAST(:cid AS VARCHAR)));
SELECT tickets.service_code, count(*) AS count_1
FROM tickets
WHERE tickets.center_id = CAST(:cid AS VARCHAR) AND tickets.business_date = CAST(:day AS DATE)
  AND tickets.status = 'waiting'
GROUP BY tickets.service_code;
SELECT services.center_id, services.code, services.name, services.prefix, services.department,
       services.wait_threshold_minutes, services.default_service_minutes, services.daily_limit_per_person,
       services.slots, services.active, services.updated_at
FROM services WHERE services.center_id = CAST(:cid AS VARCHAR) ORDER BY services.code;
WITH seq AS (SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS value)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT seq.value, gen_random_uuid(), 'queue.waiting_counts', 'hall.queue.v1', CAST(:cid AS VARCHAR), NULL,
       jsonb_set(CAST(:env_waiting AS jsonb), '{sequence}', to_jsonb(seq.value)), now()
FROM seq CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
RETURNING sequence;
COMMIT;

-- endpoint: start (POST /tickets/{id}/start)
BEGIN;
ROLLBACK;
BEGIN;
SELECT tickets.id, tickets.center_id, tickets.business_date, tickets.service_code, tickets.seq, tickets.number,
       tickets.lookup_code, tickets.kind, tickets.channel, tickets.status, tickets.duty_only, tickets.issued_at,
       tickets.effective_arrival, tickets.id_number_hash, tickets.id_number_masked, tickets.phone_hash,
       tickets.phone_masked, tickets.phone_encrypted, tickets.appointment_id, tickets.slot_start,
       tickets.checked_in_at, tickets.transferred_at, tickets.transferred_to_window, tickets.transferred_to_service,
       tickets."window", tickets.clerk_id, tickets.post, tickets.called_at, tickets.recalls, tickets.requeues,
       tickets.started_at, tickets.ended_at, tickets.served_s
FROM tickets WHERE tickets.id = :t_id FOR UPDATE;
SELECT windows.center_id, windows.number, windows.name, windows.department, windows.duty, windows.joint_approval,
       windows.a_clerk, windows.b_clerk, windows.active, windows.state, windows.clerk_id, windows.post,
       windows.device, windows.priority_streak, windows.active_ticket_id, windows.updated_at
FROM windows WHERE windows.center_id = CAST(:cid AS VARCHAR) AND windows.number = CAST(:win AS VARCHAR)
FOR UPDATE;
UPDATE tickets SET status = 'serving', started_at = now() WHERE tickets.id = :t_id;
SELECT services.center_id, services.code, services.name, services.prefix, services.department,
       services.wait_threshold_minutes, services.default_service_minutes, services.daily_limit_per_person,
       services.slots, services.active, services.updated_at
FROM services WHERE services.center_id = CAST(:cid AS VARCHAR) AND services.code = 'HJ';
WITH seq AS (SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS value)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT seq.value, gen_random_uuid(), 'ticket.started', 'hall.queue.v1', CAST(:cid AS VARCHAR), NULL,
       jsonb_set(CAST(:env_started AS jsonb), '{sequence}', to_jsonb(seq.value)), now()
FROM seq CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
RETURNING sequence;
COMMIT;

-- endpoint: finish (POST /tickets/{id}/finish)
BEGIN;
ROLLBACK;
BEGIN;
SELECT tickets.id, tickets.center_id, tickets.business_date, tickets.service_code, tickets.seq, tickets.number,
       tickets.lookup_code, tickets.kind, tickets.channel, tickets.status, tickets.duty_only, tickets.issued_at,
       tickets.effective_arrival, tickets.id_number_hash, tickets.id_number_masked, tickets.phone_hash,
       tickets.phone_masked, tickets.phone_encrypted, tickets.appointment_id, tickets.slot_start,
       tickets.checked_in_at, tickets.transferred_at, tickets.transferred_to_window, tickets.transferred_to_service,
       tickets."window", tickets.clerk_id, tickets.post, tickets.called_at, tickets.recalls, tickets.requeues,
       tickets.started_at, tickets.ended_at, tickets.served_s
FROM tickets WHERE tickets.id = :t_id FOR UPDATE;
SELECT windows.center_id, windows.number, windows.name, windows.department, windows.duty, windows.joint_approval,
       windows.a_clerk, windows.b_clerk, windows.active, windows.state, windows.clerk_id, windows.post,
       windows.device, windows.priority_streak, windows.active_ticket_id, windows.updated_at
FROM windows WHERE windows.center_id = CAST(:cid AS VARCHAR) AND windows.number = CAST(:win AS VARCHAR)
FOR UPDATE;
UPDATE tickets SET status = 'done', ended_at = now() WHERE tickets.id = :t_id;
UPDATE windows SET active_ticket_id = NULL, updated_at = now()
WHERE windows.center_id = CAST(:cid AS VARCHAR) AND windows.number = CAST(:win AS VARCHAR);
SELECT services.center_id, services.code, services.name, services.prefix, services.department,
       services.wait_threshold_minutes, services.default_service_minutes, services.daily_limit_per_person,
       services.slots, services.active, services.updated_at
FROM services WHERE services.center_id = CAST(:cid AS VARCHAR) AND services.code = 'HJ';
WITH seq AS (SELECT nextval(pg_get_serial_sequence('outbox', 'sequence')) AS value)
INSERT INTO outbox (sequence, id, type, topic, key, reference_key, envelope, created_at)
OVERRIDING SYSTEM VALUE
SELECT seq.value, gen_random_uuid(), 'ticket.finished', 'hall.queue.v1', CAST(:cid AS VARCHAR), NULL,
       jsonb_set(CAST(:env_finished AS jsonb), '{sequence}', to_jsonb(seq.value)), now()
FROM seq CROSS JOIN (SELECT pg_notify('hall_outbox', 'queue')) AS wake
RETURNING sequence;
COMMIT;
