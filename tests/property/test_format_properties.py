"""Hypothesis: every token format round-trips, keeps its promises, and batches equal singles."""

from __future__ import annotations

import string
from functools import cache

import phonenumbers
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keysvc.crypto.ff1 import FF1
from keysvc.errors import InvalidArgument
from keysvc.tokens import luhn
from keysvc.tokens.formats import FormatSpec, TokenFormat, make_format

KEY = bytes(range(100, 132))
SETTINGS = settings(max_examples=40, deadline=None)
CUSTOM = {
    "alphabet": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "pattern": r"(?P<keep>[A-Z]{2})-(?P<keep_year>\d{4})-[0-9A-Z]{4,12}",
}
PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "NL", "MX"]


@cache
def _format(name: str, options: tuple[tuple[str, str], ...] = ()) -> TokenFormat:
    return make_format(FormatSpec(name, dict(options)))


@cache
def _cipher(alphabet: str) -> FF1:
    return FF1(KEY, alphabet)


def _tokenize(
    f: TokenFormat, values: list[str], tweak: bytes, version: int = 1
) -> list[str | InvalidArgument]:
    return f.tokenize_batch(_cipher(f.alphabet), values, tweak, version)


def _detokenize(f: TokenFormat, tokens: list[str], tweak: bytes) -> list[str | InvalidArgument]:
    return f.detokenize_batch(_cipher(f.alphabet), tokens, tweak)


def _with_separators(draw: st.DrawFn, text: str, separators: str) -> str:
    """Insert separator runs between some characters of ``text``."""
    out = []
    for ch in text:
        if draw(st.booleans()) and draw(st.booleans()):
            out.append(draw(st.text(alphabet=separators, min_size=1, max_size=2)))
        out.append(ch)
    return "".join(out)


@st.composite
def digit_values(draw: st.DrawFn) -> str:
    digits = draw(st.text(alphabet=string.digits, min_size=6, max_size=60))
    return _with_separators(draw, digits, " -./()#")


@st.composite
def alphanumeric_values(draw: st.DrawFn) -> str:
    chars = draw(st.text(alphabet=string.ascii_letters + string.digits, min_size=4, max_size=40))
    return _with_separators(draw, chars, " -_/")


@st.composite
def pans(draw: st.DrawFn, separators: bool = True) -> str:
    n = draw(st.integers(13, 19))
    body = draw(st.text(alphabet=string.digits, min_size=n - 1, max_size=n - 1))
    pan = next(body + d for d in string.digits if luhn.residue(body + d) == 0)
    if separators and draw(st.booleans()):
        sep = draw(st.sampled_from(" -"))
        pan = sep.join(pan[i : i + 4] for i in range(0, n, 4))
    return pan


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    digits = f"{area:03d}{draw(st.integers(1, 99)):02d}{draw(st.integers(1, 9999)):04d}"
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}" if draw(st.booleans()) else digits


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    """(region, number) with the example number's length and random digits, in a random format."""
    region = draw(st.sampled_from(PHONE_REGIONS))
    example = phonenumbers.example_number(region)
    assert example is not None
    nsn = phonenumbers.national_significant_number(example)
    digits = nsn[0] + draw(st.text(alphabet=string.digits, min_size=len(nsn) - 1, max_size=len(nsn) - 1))
    number = phonenumbers.parse(f"+{example.country_code}{digits}", None)
    assume(phonenumbers.is_possible_number(number))
    style = draw(
        st.sampled_from(
            [
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
            ]
        )
    )
    return region, phonenumbers.format_number(number, style)


@st.composite
def emails(draw: st.DrawFn) -> str:
    atom = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)
    parts = draw(st.lists(atom, min_size=1, max_size=4))
    joiners = [draw(st.sampled_from("._+-")) for _ in parts[1:]]
    local = parts[0] + "".join(j + p for j, p in zip(joiners, parts[1:], strict=True))
    assume(sum(ch.isalnum() for ch in local) >= 4 and len(local) <= 64)
    label = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)
    domain = ".".join(draw(st.lists(label, min_size=1, max_size=3)))
    return f"{local}@{domain}"


def _check_round_trip(f: TokenFormat, values: list[str], tweak: bytes) -> list[str]:
    tokens = _tokenize(f, values, tweak)
    assert all(isinstance(t, str) for t in tokens), tokens
    texts = [t for t in tokens if isinstance(t, str)]
    assert _detokenize(f, texts, tweak) == [f.slots(v).text for v in values]  # type: ignore[attr-defined]
    assert tokens == [_tokenize(f, [v], tweak)[0] for v in values]  # batch == single
    return texts


def _same_shape(value: str, token: str, free: str) -> bool:
    """Same length; every position holds free characters in both, or the same character."""
    return len(value) == len(token) and all(
        (a in free and b in free) or a == b for a, b in zip(value, token, strict=True)
    )


@SETTINGS
@given(st.lists(digit_values(), min_size=1, max_size=8), st.binary(max_size=16))
def test_digits_round_trip(values: list[str], tweak: bytes) -> None:
    for value, token in zip(values, _check_round_trip(_format("digits"), values, tweak), strict=True):
        assert _same_shape(value, token, string.digits)
        assert [c for c in value if not c.isdigit()] == [c for c in token if not c.isdigit()]


@SETTINGS
@given(st.lists(alphanumeric_values(), min_size=1, max_size=8), st.binary(max_size=16))
def test_alphanumeric_round_trip(values: list[str], tweak: bytes) -> None:
    for value, token in zip(values, _check_round_trip(_format("alphanumeric"), values, tweak), strict=True):
        assert _same_shape(value, token, string.ascii_letters + string.digits)


@SETTINGS
@given(
    st.lists(pans(), min_size=1, max_size=10),
    st.sampled_from(["invalid", "valid", "any"]),
    st.integers(1, 40),
    st.binary(max_size=16),
)
def test_pan_round_trip_layout_and_luhn(values: list[str], policy: str, version: int, tweak: bytes) -> None:
    f = _format("pan", (("luhn", policy),))
    tokens = _tokenize(f, values, tweak, version)
    assert tokens == [_tokenize(f, [v], tweak, version)[0] for v in values]
    texts = [t for t in tokens if isinstance(t, str)]
    assert len(texts) == len(values)
    assert _detokenize(f, texts, tweak) == values
    for value, token in zip(values, texts, strict=True):
        assert _same_shape(value, token, string.digits)
        digits, token_digits = (
            value.replace(" ", "").replace("-", ""),
            token.replace(" ", "").replace("-", ""),
        )
        prefix, _, suffix = f.layout(len(digits))  # type: ignore[attr-defined]
        assert token_digits[:prefix] == digits[:prefix] and token_digits[-suffix:] == digits[-suffix:]
        residue = luhn.residue(token_digits)
        if policy == "invalid":
            assert residue == f.marker_for(version) == 1 + (version - 1) % 9 == f.version_marker(token)
        elif policy == "valid":
            assert residue == 0 and f.version_marker(token) is None


@SETTINGS
@given(pans(separators=False).filter(lambda p: len(p) == 16), st.integers(1, 100))
def test_16_digit_pan_keeps_bin_and_last4_as_promised(pan: str, version: int) -> None:
    for policy, kept in (("invalid", 5), ("valid", 5), ("any", 6)):
        f = _format("pan", (("luhn", policy),))
        (token,) = _tokenize(f, [pan], b"", version)
        assert isinstance(token, str)
        assert token[:kept] == pan[:kept] and token[-4:] == pan[-4:]
        assert f.describe()["kept_prefix_by_length"].split()[3] == f"16:{kept}"


@SETTINGS
@given(st.lists(ssns(), min_size=1, max_size=8), st.binary(max_size=16))
def test_ssn_round_trip(values: list[str], tweak: bytes) -> None:
    f = _format("ssn", (("allow_issuable", "true"),))
    for value, token in zip(values, _check_round_trip(f, values, tweak), strict=True):
        assert _same_shape(value, token, string.digits)
    vault = make_format(FormatSpec("ssn"), purpose="vault-token")
    for value in values:
        token = vault.random_token(value, lambda n: bytes(n))
        assert token.replace("-", "")[0] == "9" and _same_shape(value, token, string.digits)


@SETTINGS
@given(st.lists(phones(), min_size=1, max_size=5), st.binary(max_size=16))
def test_phone_round_trip(numbers: list[tuple[str, str]], tweak: bytes) -> None:
    for region, number in numbers:
        f = _format("phone", (("region", region),))
        (token,) = _check_round_trip(f, [number], tweak)
        assert _same_shape(number, token, string.digits)
        if number.startswith("+"):
            code = str(phonenumbers.parse(number, None).country_code)
            assert token.replace(" ", "").startswith("+" + code)


@SETTINGS
@given(st.lists(emails(), min_size=1, max_size=8), st.binary(max_size=16))
def test_email_round_trip(values: list[str], tweak: bytes) -> None:
    f = _format("email")
    for value, token in zip(values, _check_round_trip(f, values, tweak), strict=True):
        local, domain = value.lower().split("@")
        token_local, token_domain = token.split("@")
        assert token_domain == domain and _same_shape(
            local, token_local, string.ascii_lowercase + string.digits
        )


@SETTINGS
@given(
    st.lists(st.from_regex(CUSTOM["pattern"], fullmatch=True), min_size=1, max_size=8), st.binary(max_size=8)
)
def test_custom_round_trip(values: list[str], tweak: bytes) -> None:
    f = _format("custom", tuple(CUSTOM.items()))
    for value, token in zip(values, _check_round_trip(f, values, tweak), strict=True):
        assert token[:8] == value[:8] and len(token) == len(value)


@SETTINGS
@given(
    st.one_of(
        st.tuples(st.just("digits"), st.text(alphabet=string.digits + "-", max_size=12)),
        st.tuples(st.just("alphanumeric"), st.text(alphabet=string.ascii_letters + "-", max_size=6)),
        st.tuples(
            st.just("email"), st.text(alphabet="abc.", min_size=1, max_size=5).map(lambda s: s + "@x.io")
        ),
    )
)
def test_small_domains_are_refused_never_tokenized(case: tuple[str, str]) -> None:
    name, value = case
    f = _format(name)
    free = sum(ch.isalnum() for ch in value.split("@")[0])
    assume(free < f.min_free)  # type: ignore[attr-defined]
    (result,) = _tokenize(f, [value], b"")
    assert isinstance(result, InvalidArgument)
    assert value not in str(result) or len(value) < 4  # short strings occur in any English message
    assert "1,000,000" in str(result) or "dot-atom" in str(result) or "ASCII" in str(result)
