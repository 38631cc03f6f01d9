import pytest

from keysvc.store.postgres import MIGRATIONS, PostgresStore

pytestmark = pytest.mark.postgres


def test_migrations_apply_once_and_reopen(pg_url):
    PostgresStore(pg_url, max_size=2).close()
    again = PostgresStore(pg_url, max_size=2)
    assert again.schema_version == len(MIGRATIONS)
    again.close()


def test_two_stores_share_the_job_lock(pg_url):
    a, b = PostgresStore(pg_url, max_size=2), PostgresStore(pg_url, max_size=2)
    try:
        with a.job_lock("scheduler") as first, b.job_lock("scheduler") as second:
            assert (first, second) == (True, False)
        with b.job_lock("scheduler") as later:
            assert later
    finally:
        a.close()
        b.close()


def test_unreachable_server_is_a_config_error_without_the_url():
    from keysvc.config import ConfigError
    from keysvc.server.app import open_store

    with pytest.raises(ConfigError) as info:
        open_store("postgresql://postgres:s3cret@127.0.0.1:1/keysvc")
    assert "s3cret" not in str(info.value) and "PostgreSQL" in str(info.value)
