"""A deterministic demo source, so ``make run`` and the tests have data without devices."""
