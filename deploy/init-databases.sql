-- One database per service on one server (DOMAIN.md: services never read each other's databases).
CREATE DATABASE hall_queue;
CREATE DATABASE hall_cases;
CREATE DATABASE hall_monitor;
CREATE DATABASE hall_notify;
CREATE DATABASE hall_identity;
