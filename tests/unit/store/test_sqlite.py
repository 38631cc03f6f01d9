from keysvc.store.sqlite import MIGRATIONS, SqliteStore


def test_migrations_apply_once_and_reopen(tmp_path):
    path = tmp_path / "keysvc.db"
    SqliteStore(path).close()
    again = SqliteStore(path)
    assert again.schema_version == len(MIGRATIONS)
    again.close()
