"""Event type -> handler of the identity service's consumers: none yet (it only publishes)."""

from shared.events.consumer import ConsumerSpec

CONSUMERS: list[ConsumerSpec] = []
