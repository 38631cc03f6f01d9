import pytest

from keysvc.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "keysvc.db")
    else:
        from keysvc.store.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("pg_url"), max_size=4)
    yield s
    s.close()
