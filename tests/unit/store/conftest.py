import pytest

from keysvc.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path):
    s = SqliteStore(tmp_path / "keysvc.db")
    yield s
    s.close()
