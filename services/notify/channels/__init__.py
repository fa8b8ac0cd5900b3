"""The channels notify sends on, as adapters behind one interface (`base.Channel`)."""
