"""enduro: make long browser-automation jobs finish."""
