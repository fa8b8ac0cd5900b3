"""Templates: Jinja2 in a sandbox, validated against the event's payload model when saved (issue 25)."""
