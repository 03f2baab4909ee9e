"""tvbeta."""
