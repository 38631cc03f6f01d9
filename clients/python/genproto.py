"""Regenerate the committed gRPC stubs from proto/ (run: python clients/python/genproto.py).

protoc emits ``from keysvc.v1 import ...``; that would collide with the server package
``keysvc``, so the imports are rewritten to ``keysvc_client._pb.keysvc.v1``.
``generate(out_dir)`` is also used by the staleness test.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
PACKAGE_DIR = Path(__file__).resolve().parent / "keysvc_client" / "_pb"
_IMPORT = re.compile(r"^from keysvc\.v1 import", re.MULTILINE)


def generate(out_dir: Path) -> None:
    """Write the generated modules for every proto under proto/ into ``out_dir``."""
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as raw:
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for src in sorted(Path(raw).rglob("*.py*")):
            text = _IMPORT.sub("from keysvc_client._pb.keysvc.v1 import", src.read_text())
            dst = out_dir / src.relative_to(raw)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text)
    for pkg in (out_dir, out_dir / "keysvc", out_dir / "keysvc" / "v1"):
        (pkg / "__init__.py").write_text("")


def main() -> None:
    if PACKAGE_DIR.exists():
        shutil.rmtree(PACKAGE_DIR)
    generate(PACKAGE_DIR)
    print(f"generated stubs in {PACKAGE_DIR.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
