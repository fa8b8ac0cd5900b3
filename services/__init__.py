"""The five services of the hall platform."""
