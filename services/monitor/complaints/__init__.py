"""Supervision II: complaints (投诉, 三个一) and bad-rating follow-ups (差评回访), with the ratings they come from."""
