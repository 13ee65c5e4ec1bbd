"""Small shared utilities (config resolvers, rank-zero logging, run naming)."""
