from keysvc.store.sqlite import MIGRATIONS, SqliteStore


def test_migrations_apply_once_and_reopen(tmp_path):
    path = tmp_path / "keysvc.db"
    SqliteStore(path).close()
    again = SqliteStore(path)
    assert again.schema_version == len(MIGRATIONS)
    again.close()


def test_two_stores_on_one_file_share_the_job_lock(tmp_path):
    a, b = SqliteStore(tmp_path / "k.db"), SqliteStore(tmp_path / "k.db")
    try:
        with a.job_lock("scheduler") as first, b.job_lock("scheduler") as second:
            assert (first, second) == (True, False)
    finally:
        a.close()
        b.close()
