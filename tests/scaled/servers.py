"""The scaled-mode tests' throwaway PostgreSQL and Redis: the benchmark's own starters
(scripts/bench/servers.py), so tests and `scripts.bench.scaled` run the same servers."""

from scripts.bench.servers import postgres_bin, postgres_server, redis_server

__all__ = ["postgres_bin", "postgres_server", "redis_server"]
