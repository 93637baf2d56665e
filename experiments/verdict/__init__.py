"""Statistics and verdicts: seed intervals, sign tests, Holm, paired significance tables and
predicted-versus-measured agreement. Plain numpy, scipy and pandas."""
