import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

import keysvc_client

ROOT = Path(__file__).resolve().parents[3]


def test_public_names_are_pinned():
    assert sorted(keysvc_client.__all__) == [
        "AdminClient",
        "AlreadyExistsError",
        "BatchError",
        "CiphertextFormatError",
        "DataKey",
        "DeadlineExceededError",
        "DecryptionError",
        "Drop",
        "Encrypt",
        "FailedPreconditionError",
        "FieldError",
        "InternalError",
        "InvalidArgumentError",
        "ItemResult",
        "KeyServiceClient",
        "KeyVersionDestroyedError",
        "KeysvcError",
        "Mask",
        "NotFoundError",
        "PermissionDeniedError",
        "RecordBatchError",
        "RedactedSpan",
        "Redaction",
        "ResourceExhaustedError",
        "Schema",
        "StreamDecryptionError",
        "Token",
        "Tokenize",
        "UnauthenticatedError",
        "UnavailableError",
        "UnimplementedError",
        "protect_record",
        "protect_records",
        "reveal_record",
        "reveal_records",
    ]
    assert all(hasattr(keysvc_client, name) for name in keysvc_client.__all__)


def test_client_never_imports_the_server_package():
    code = textwrap.dedent("""
        import sys, keysvc_client, keysvc_client.stream
        bad = sorted(m for m in sys.modules if m == "keysvc" or m.startswith("keysvc."))
        assert not bad, bad
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_client_installs_and_imports_alone_in_a_fresh_venv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [py, "-m", "pip", "install", "-q", str(ROOT / "clients" / "python")], check=True, capture_output=True
    )
    out = subprocess.run(
        [
            py,
            "-c",
            "import keysvc_client, keysvc_client.stream, importlib.util; "
            "print(importlib.util.find_spec('keysvc') is None)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.stdout.strip() == "True"
