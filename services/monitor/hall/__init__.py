"""Supervision II: the hall read model (windows, tickets, services, appointment requests, inquiries) and the hall's alerts (vacant window, long wait, unanswered requests and inquiries)."""
