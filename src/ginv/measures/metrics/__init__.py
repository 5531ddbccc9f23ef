"""The built-in measures, one per module: accuracy, DI, LI, SI and sensitivity."""
