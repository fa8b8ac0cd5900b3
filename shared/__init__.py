"""The project's common library: settings, clock, database, errors, auth, personal data, events, metrics."""
