"""The cases service's calendar domain: overrides, imported years, deadlines (it owns the calendar data)."""
