import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("genproto", ROOT / "clients" / "python" / "genproto.py")
genproto = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(genproto)


def test_committed_stubs_match_the_protos(tmp_path):
    genproto.generate(tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {
        p.relative_to(genproto.PACKAGE_DIR): p.read_text()
        for p in genproto.PACKAGE_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert fresh.keys() == committed.keys(), "stubs are stale: run `make proto`"
    stale = [str(name) for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stubs are stale, run `make proto`: {stale}"
