"""Development and test infrastructure: the embedded PostgreSQL 18 and Kafka-compatible broker, and the
launcher behind `make run`. Production uses real servers through the same settings (see deploy/)."""
