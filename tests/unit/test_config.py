import pytest

from keysvc.config import ConfigError, load_settings


def test_layers_in_order(tmp_path):
    path = tmp_path / "keysvc.toml"
    path.write_text(
        'data_dir = "/d"\n[server]\nlisten = "0.0.0.0:1"\nworkers = 2\n[vault]\naddr = "http://file"\n'
    )
    s = load_settings(
        path,
        env={"VAULT_ADDR": "http://env", "KEYSVC_SERVER_WORKERS": "3", "KEYSVC_TOKEN": "x"},
        overrides={"server.listen": "127.0.0.1:9", "server.reflection": None},
    )
    assert (s.data_dir, s.server.listen, s.server.workers, s.vault.addr) == (
        "/d",
        "127.0.0.1:9",
        3,
        "http://env",
    )
    assert s.server.reflection is False
    assert s.store_url == "sqlite:////d/keysvc.db"


@pytest.mark.parametrize(
    "doc, message",
    [
        ("[nope]\nx = 1\n", r"unknown config section \[nope\]"),
        ("[server]\nlisen = 'x'\n", "unknown setting server.lisen"),
        ("[server]\nworkers = 'many'\n", "server.workers must be a int"),
        ("[server]\nreflection = 'maybe'\n", "server.reflection must be a bool"),
    ],
)
def test_bad_settings_are_named(tmp_path, doc, message):
    path = tmp_path / "keysvc.toml"
    path.write_text(doc)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={})
