"""Bringing cases in and people prepared: the import of open cases from a previous system, the service guide."""
