"""PostgreSQL: the connection pool of NNSERVE_DATABASE_URL and its schema."""

from .database import Database, connect_line

__all__ = ["Database", "connect_line"]
