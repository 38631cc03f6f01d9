from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from keysvc.crypto import envelope
from keysvc.crypto.context import encode_context
from keysvc.crypto.envelope import Kind

names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=60)
contexts = st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=6)


@given(
    dek=st.binary(min_size=32, max_size=32),
    name=names,
    version=st.integers(0, 2**32 - 1),
    plaintext=st.binary(max_size=2048),
    context=contexts,
    kind=st.sampled_from(Kind),
)
def test_round_trip(dek, name, version, plaintext, context, kind):
    aead = AESGCM(dek)
    sealed = envelope.seal(aead, envelope.encode_header(kind, name, version), plaintext, context)
    header = envelope.parse_header(sealed)
    assert (header.kind, header.key_name, header.key_version) == (kind, name, version)
    reordered = dict(reversed(list(context.items())))
    assert envelope.open_sealed(aead, header, sealed, encode_context(reordered)) == plaintext


@given(a=contexts, b=contexts)
def test_context_encoding_is_canonical(a, b):
    assert (encode_context(a) == encode_context(b)) == (a == b)
