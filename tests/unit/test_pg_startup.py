"""NNSERVE_DATABASE_URL at start-up: the schema made once under its lock, the backend picked,
and a database that cannot be used stopping start-up with one line without the password."""

import pytest

from service import backends
from service.jobs.postgres import PgJobs
from service.pg.schema import MIGRATIONS, migrate
from service.settings import Settings


def test_the_url_picks_the_postgres_jobs_and_migrating_again_changes_nothing(pg_database,
                                                                            tmp_path):
    settings = Settings(store_dir=tmp_path, database_url=pg_database.url)
    jobs = backends.build_jobs(settings)
    assert isinstance(jobs, PgJobs)
    with pg_database.connection() as conn:
        migrate(conn)
        versions = [row[0] for row in conn.execute("SELECT version FROM nnserve_schema")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    jobs.db.close()


def test_bad_credentials_stop_start_up_with_one_line_without_the_password(pg_cluster, tmp_path):
    url = f"postgresql://nobody:s3cret-pw@127.0.0.1:{pg_cluster.port}/postgres"
    with pytest.raises(SystemExit) as caught:
        backends.prepare(Settings(store_dir=tmp_path, database_url=url))
    line = str(caught.value)
    assert line.startswith("NNSERVE_DATABASE_URL") and "nobody" in line
    assert "s3cret-pw" not in line and "\n" not in line


def test_an_unreachable_database_stops_start_up_naming_the_setting(tmp_path):
    from tests.pgkit import free_port

    url = f"postgresql://u:pw123456@127.0.0.1:{free_port()}/db"
    with pytest.raises(SystemExit) as caught:
        backends.prepare(Settings(store_dir=tmp_path, database_url=url))
    assert "NNSERVE_DATABASE_URL" in str(caught.value) and "pw123456" not in str(caught.value)


def test_a_clients_503_names_neither_the_address_nor_the_servers_detail(pg_database, caplog):
    import psycopg

    from service.errors import StoreUnavailable
    from service.pg import Database
    from tests.pgkit import free_port

    with psycopg.connect(pg_database.url, autocommit=True) as holder:
        holder.execute("CREATE TABLE held (id INT PRIMARY KEY)")
        holder.execute("INSERT INTO held VALUES (1)")
        with holder.transaction():
            holder.execute("SELECT * FROM held FOR UPDATE")
            with pytest.raises(StoreUnavailable) as caught, pg_database.connection() as conn:
                conn.execute("SET lock_timeout = '50ms'")
                conn.execute("SELECT * FROM held FOR UPDATE")
    detail = caught.value.detail
    assert detail == "NNSERVE_DATABASE_URL: cannot use the database: canceling statement due" \
                     " to lock timeout", detail
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "nnserve.db")
    assert "held" in logged and str(pg_database.url.split("@")[1]) in logged  # the log has all

    port = free_port()
    gone = Database(f"postgresql://u:pw123456@127.0.0.1:{port}/db", max_size=1)
    with pytest.raises(StoreUnavailable) as caught, gone.connection(timeout=2):
        pass
    assert str(port) not in caught.value.detail and "127.0.0.1" not in caught.value.detail
    assert caught.value.detail.startswith("NNSERVE_DATABASE_URL: cannot use the database: ")
    gone.close()
