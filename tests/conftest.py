"""Suite-wide fixtures. Tests run on the real PostgreSQL and Redis named by DATABASE_URL and
REDIS_URL (`make test` starts embedded ones when the machine has none)."""
