"""Token formats: specs, layouts, Luhn policy and version markers, per-item errors."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest

from keysvc.crypto.ff1 import FF1
from keysvc.errors import FailedPrecondition, InvalidArgument
from keysvc.tokens import luhn
from keysvc.tokens._positional import bind_tweak
from keysvc.tokens.formats import ALPHANUMERIC, FormatSpec, TokenFormat, make_format

KEY = bytes(range(32))
TWEAK = b"field:card"
VISA = "4111111111111111"
AMEX = "378282246310005"


def fmt(name: str, purpose: str = "fpe", **options: str) -> TokenFormat:
    return make_format(FormatSpec(name, options), purpose=purpose)


def cipher(f: TokenFormat, key: bytes = KEY) -> FF1:
    return FF1(key, f.alphabet)


def counter_rand() -> Callable[[int], bytes]:
    """Deterministic stand-in for os.urandom."""
    stream = itertools.count()
    return lambda n: bytes(next(stream) % 251 for _ in range(n))


def tokens_of(f: TokenFormat, values: list[str], version: int = 1, key: bytes = KEY) -> list[str]:
    out = f.tokenize_batch(cipher(f, key), values, TWEAK, version)
    assert all(isinstance(t, str) for t in out), out
    return [t for t in out if isinstance(t, str)]


def round_trip(f: TokenFormat, values: list[str], version: int = 1) -> list[str]:
    tokens = tokens_of(f, values, version)
    assert f.detokenize_batch(cipher(f), tokens, TWEAK) == [f.slots(v).text for v in values]  # type: ignore[attr-defined]
    return tokens


def assert_error(result: object, match: str, value: str) -> None:
    assert isinstance(result, InvalidArgument), result
    assert re.search(match, str(result)), str(result)
    assert value not in str(result)


def luhn_valid(prefix: str, length: int) -> str:
    body = prefix + "7" * (length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn.residue(body + d) == 0)


# -- specs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (FormatSpec("bogus"), "unknown token format; known formats: digits, alphanumeric, pan"),
        (FormatSpec("digits", {"x": "1"}), "unknown digits format option x; allowed: none"),
        (FormatSpec("pan", {"keep_first": "6"}), "allowed: keep_prefix, keep_suffix, luhn"),
        (FormatSpec("pan", {"keep_prefix": "9"}), "keep_prefix must be an integer from 0 to 8"),
        (FormatSpec("pan", {"keep_prefix": "six"}), "keep_prefix must be an integer"),
        (FormatSpec("pan", {"keep_suffix": "-1"}), "keep_suffix must be an integer from 0 to 7"),
        (FormatSpec("pan", {"keep_suffix": "7"}), "fewer than 6 encrypted digits in a 13-digit card number"),
        (FormatSpec("pan", {"luhn": "maybe"}), "luhn must be one of invalid, valid, any"),
        (FormatSpec("ssn", {"allow_issuable": "yes"}), "allow_issuable must be one of true, false"),
        (FormatSpec("phone", {"region": "XX"}), "region must be a supported ISO 3166 region code"),
        (FormatSpec("custom", {"pattern": "x"}), "custom format needs the option alphabet"),
        (FormatSpec("custom", {"alphabet": "ab"}), "custom format needs the option pattern"),
        (FormatSpec("custom", {"alphabet": "aba", "pattern": "x"}), "2 to 65536 distinct characters"),
        (FormatSpec("custom", {"alphabet": "ab", "pattern": "("}), "not a valid regular expression"),
    ],
)
def test_bad_specs(spec: FormatSpec, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        make_format(spec)


def test_bad_purpose() -> None:
    with pytest.raises(InvalidArgument, match="purpose fpe or vault-token"):
        make_format(FormatSpec("digits"), purpose="encrypt")


def test_ssn_is_refused_for_fpe_keys_with_the_reason() -> None:
    with pytest.raises(InvalidArgument) as err:
        make_format(FormatSpec("ssn"))
    message = str(err.value)
    assert "8.9e8" in message and "10^8" in message
    assert "--purpose vault-token" in message and "allow_issuable=true" in message


def test_every_format_describes_itself() -> None:
    for f in [
        fmt("digits"),
        fmt("alphanumeric"),
        fmt("pan"),
        fmt("ssn", "vault-token"),
        fmt("ssn", allow_issuable="true"),
        fmt("phone", region="gb"),
        fmt("email"),
        fmt("custom", alphabet="0123456789", pattern=r"(?P<keep>\d{2})\d{6}"),
    ]:
        info = f.describe()
        assert info["format"] == f.name
        assert all(isinstance(v, str) for v in info.values())


def test_cipher_must_use_the_format_alphabet() -> None:
    with pytest.raises(ValueError, match="needs an FF1 cipher over its own alphabet"):
        fmt("alphanumeric").tokenize_batch(FF1(KEY), ["abcd1234"], b"", 1)


def test_versions_start_at_one() -> None:
    f = fmt("pan")
    with pytest.raises(ValueError, match="start at 1"):
        f.tokenize_batch(cipher(f), [VISA], b"", 0)
    with pytest.raises(ValueError, match="start at 1"):
        f.marker_for(0)


# -- digits / alphanumeric ----------------------------------------------------------------


def test_digits_keep_separators_in_place() -> None:
    f = fmt("digits")
    values = ["123456", "12-34-56-78", "(555) 123.4567", "acct 0042 1234"]
    tokens = round_trip(f, values)
    for value, token in zip(values, tokens, strict=True):
        assert re.sub(r"\d", "#", token) == re.sub(r"\d", "#", value)
    assert tokens[0] == FF1(KEY).encrypt("123456", TWEAK)  # no kept parts: the caller's tweak as is


def test_digits_uniform_layout_batch_equals_per_item() -> None:
    f = fmt("digits")
    values = [f"{i:04d}-{i * 7 % 10000:04d}" for i in range(50)]
    batch = tokens_of(f, values)
    assert batch == [tokens_of(f, [v])[0] for v in values]
    assert batch == tokens_of(f, [*values, "123456"])[:-1]  # mixed layouts take the per-item path


def test_digits_keep_nul_and_non_ascii_separators() -> None:
    f = fmt("digits")
    assert [t[-1] for t in round_trip(f, ["123456\x00", "123456\x00"])] == ["\x00", "\x00"]
    assert round_trip(f, ["١٢٣ 123456"])[0][:4] == "١٢٣ "  # only ASCII digits are numerals


def test_digits_domain_rule_and_errors() -> None:
    f = fmt("digits")
    out = f.tokenize_batch(cipher(f), ["12345", "123456", "ab-12-3", ""], TWEAK, 1)
    assert_error(out[0], r"at least 6 are needed for an FF1 domain of at least 1,000,000", "12345")
    assert isinstance(out[1], str)
    assert_error(out[2], "too few digits", "ab-12-3")
    assert_error(out[3], "too few digits", "x")
    with pytest.raises(InvalidArgument, match="too long"):
        f.validate("1" * 4097)


def test_alphanumeric_is_case_sensitive_over_62_symbols() -> None:
    f = fmt("alphanumeric")
    assert f.alphabet == ALPHANUMERIC and len(set(ALPHANUMERIC)) == 62
    values = ["ABCDEFGH", "abcdefgh", "XK-9931-ZZ", "ab1c"]
    tokens = round_trip(f, values)
    assert tokens[0] != tokens[1]
    assert any(
        ch.islower() for ch in "".join(tokens[:1] + tokens[2:3])
    )  # an all-caps input may get lower case
    assert tokens[2][2] == "-" and tokens[2][7] == "-"
    assert_error(f.tokenize_batch(cipher(f), ["abc"], b"", 1)[0], "at least 4", "abc")


# -- pan ----------------------------------------------------------------------------------


def expected_pan_token(value: str, version: int, *, luhn_policy: str = "invalid", key: bytes = KEY) -> str:
    """The PAN token computed straight from the documented construction."""
    n = len(value)
    carrier = 0 if luhn_policy == "any" else 1
    prefix = max(0, min(6, n - 4 - carrier - 6))
    free = n - prefix - 4 - carrier
    tweak = bind_tweak(TWEAK, (value[:prefix], value[n - 4 :]))
    middle = FF1(key).encrypt(value[prefix : prefix + free], tweak)
    if not carrier:
        return value[:prefix] + middle + value[n - 4 :]
    target = 1 + (version - 1) % 9 if luhn_policy == "invalid" else 0
    for digit in "0123456789":
        token = value[:prefix] + middle + digit + value[n - 4 :]
        if luhn.residue(token) == target:
            return token
    raise AssertionError("no carrier digit")


@pytest.mark.parametrize("policy", ["invalid", "valid", "any"])
@pytest.mark.parametrize("length", range(13, 20))
def test_pan_token_follows_the_documented_construction(policy: str, length: int) -> None:
    f = fmt("pan", luhn=policy)
    value = luhn_valid("411111", length)
    token = tokens_of(f, [value], version=5)[0]
    assert token == expected_pan_token(value, 5, luhn_policy=policy)
    assert f.detokenize_batch(cipher(f), [token], TWEAK) == [value]


def test_pan_layout_keeps_bin_only_where_the_domain_allows() -> None:
    f = fmt("pan")
    assert f.describe()["kept_prefix_by_length"] == "13:2 14:3 15:4 16:5 17:6 18:6 19:6"
    assert f.describe()["encrypted_digits_by_length"] == "13:6 14:6 15:6 16:6 17:6 18:7 19:8"
    assert fmt("pan", luhn="any").describe()["kept_prefix_by_length"] == "13:3 14:4 15:5 16:6 17:6 18:6 19:6"
    assert fmt("pan", keep_prefix="8", luhn="any").describe()["kept_prefix_by_length"].endswith("18:8 19:8")
    token = tokens_of(f, [VISA])[0]
    assert token[:5] == VISA[:5] and token[-4:] == VISA[-4:] and token != VISA


def test_pan_invalid_policy_tokens_fail_luhn_and_carry_the_version() -> None:
    f = fmt("pan")
    values = [VISA, AMEX, "5555555555554444", "6011111111111117"]
    for version in range(1, 21):
        tokens = round_trip(f, values, version)
        marker = f.marker_for(version)
        assert marker == 1 + (version - 1) % 9
        assert [luhn.residue(t) for t in tokens] == [marker] * len(values)
        assert [f.version_marker(t) for t in tokens] == [marker] * len(values)


def test_pan_valid_policy_tokens_pass_luhn_without_marker() -> None:
    f = fmt("pan", luhn="valid")
    tokens = round_trip(f, [VISA, AMEX], version=4)
    assert [luhn.residue(t) for t in tokens] == [0, 0]
    assert f.marker_for(4) is None and f.version_marker(tokens[0]) is None


def test_pan_any_policy_accepts_luhn_failures() -> None:
    f = fmt("pan", luhn="any")
    tokens = round_trip(f, [VISA[:-1] + "2", VISA])
    assert tokens[0][:6] == VISA[:6]
    assert f.marker_for(3) is None


def test_pan_per_item_errors_never_contain_the_value() -> None:
    f = fmt("pan")
    bad_luhn = VISA[:-1] + "2"
    values = [VISA, bad_luhn, "411111111111", "4" * 20, "4111x11111111111", "4111 1111 1111 1111"]
    out = f.tokenize_batch(cipher(f), values, TWEAK, 1)
    assert isinstance(out[0], str) and isinstance(out[5], str)
    assert_error(out[1], "fails the Luhn check", bad_luhn)
    assert_error(out[2], "13 to 19 digits", "411111111111")
    assert_error(out[3], "13 to 19 digits", "4" * 20)
    assert_error(out[4], "only digits, spaces and dashes", "4111x11111111111")


def test_pan_detokenize_refuses_tokens_with_the_wrong_luhn() -> None:
    f = fmt("pan")
    out = f.detokenize_batch(cipher(f), [VISA, "4111 1111 1111 1111"], TWEAK)
    assert_error(out[0], "wrong Luhn check", VISA)
    assert_error(out[1], "wrong Luhn check", VISA)
    with pytest.raises(InvalidArgument, match="wrong Luhn check"):
        f.version_marker(VISA)
    valid = fmt("pan", luhn="valid")
    token = tokens_of(fmt("pan"), [VISA])[0]
    assert_error(valid.detokenize_batch(cipher(valid), [token], TWEAK)[0], "wrong Luhn check", token)


def test_pan_separators_in_uniform_and_mixed_layouts() -> None:
    f = fmt("pan")
    plain = tokens_of(f, [VISA])[0]
    spaced = tokens_of(f, ["4111 1111 1111 1111"] * 3)
    assert spaced == [f"{plain[:4]} {plain[4:8]} {plain[8:12]} {plain[12:]}"] * 3
    mixed = round_trip(f, ["4111-1111-1111-1111", VISA, " 3782 822463 10005", AMEX])
    assert mixed[0] == plain[:4] + "-" + plain[4:8] + "-" + plain[8:12] + "-" + plain[12:]
    assert mixed[1] == plain
    assert mixed[2].replace(" ", "") == mixed[3] and mixed[2][0] == " "


def test_pan_kept_digits_are_bound_into_the_tweak() -> None:
    f = fmt("pan")
    a, b = luhn_valid("411111", 16), luhn_valid("511111", 16)
    assert a[5:11] == b[5:11]
    ta, tb = tokens_of(f, [a, b])
    assert ta[5:11] != tb[5:11]


def test_pan_other_keys_and_tweaks_give_other_tokens() -> None:
    f = fmt("pan")
    token = tokens_of(f, [VISA])[0]
    assert tokens_of(f, [VISA], key=bytes(32))[0] != token
    assert f.tokenize_batch(cipher(f), [VISA], b"other", 1)[0] != token


def test_pan_mask_and_random_token() -> None:
    f = fmt("pan")
    assert f.mask(VISA) == "************1111"
    assert f.mask("4111 1111 1111 1111") == "**** **** **** 1111"
    token = f.random_token("4111 1111 1111 1111", counter_rand())
    assert token[:5] == "4111 " and token[-5:] == " 1111" and len(token) == 19
    assert luhn.residue(token.replace(" ", "")) in range(1, 10)
    valid = fmt("pan", luhn="valid").random_token(AMEX, counter_rand())
    assert luhn.residue(valid) == 0 and valid[:4] == AMEX[:4] and valid != AMEX
    with pytest.raises(InvalidArgument, match="Luhn"):
        f.random_token(VISA[:-1] + "2", counter_rand())


# -- ssn ----------------------------------------------------------------------------------


def test_ssn_fpe_keeps_the_shape_when_allowed() -> None:
    f = fmt("ssn", allow_issuable="true")
    tokens = round_trip(f, ["123-45-6789", "123456789", "912-70-1234"])
    assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", tokens[0])
    assert tokens[1] == tokens[0].replace("-", "")
    assert f.mask("123-45-6789") == "***-**-6789" and f.mask("123456789") == "*****6789"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("000-12-3456", "not a valid SSN"),
        ("666-12-3456", "not a valid SSN"),
        ("123-00-4567", "not a valid SSN"),
        ("123-45-0000", "not a valid SSN"),
        ("912-34-5678", "keysvc token range"),
        ("12-345-6789", "must look like 123-45-6789"),
        ("123-456789", "must look like 123-45-6789"),
        ("\uff11\uff12\uff13-45-6789", "must look like 123-45-6789"),  # full-width digits
    ],
)
def test_ssn_input_rules(value: str, match: str) -> None:
    f = fmt("ssn", allow_issuable="true")
    assert_error(f.tokenize_batch(cipher(f), [value], b"", 1)[0], match, value)


def test_ssn_vault_mode_random_tokens_are_never_issuable() -> None:
    f = fmt("ssn", "vault-token")
    rand = counter_rand()
    for value in ["123-45-6789", "123456789"] * 50:
        token = f.random_token(value, rand)
        digits = token.replace("-", "")
        assert len(token) == len(value) and (token[3] == "-") == (value[3] == "-")
        assert digits[0] == "9" and 1 <= int(digits[3:5]) <= 49 and int(digits[5:]) >= 1
        with pytest.raises(InvalidArgument, match="token range"):
            f.validate(token)  # a token is never tokenized again


def test_ssn_vault_mode_refuses_ff1() -> None:
    f = fmt("ssn", "vault-token")
    with pytest.raises(FailedPrecondition, match="vault-token"):
        f.tokenize_batch(cipher(f), ["123-45-6789"], b"", 1)
    with pytest.raises(FailedPrecondition):
        f.detokenize_batch(cipher(f), ["123-45-6789"], b"")


# -- phone --------------------------------------------------------------------------------


def test_phone_keeps_country_code_and_formatting() -> None:
    f = fmt("phone")
    values = ["+14155552671", "+1 415-555-2671", "(415) 555-2671", "415-555-2671", "415.555.2671"]
    tokens = round_trip(f, values)
    assert tokens[0][:2] == "+1" and len(tokens[0]) == 12
    assert tokens[1][:3] == "+1 " and tokens[1][6] == "-"
    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", tokens[2])
    assert tokens[2].translate(str.maketrans("", "", "() -")) == tokens[3].replace("-", "")
    assert tokens[0][2:] != tokens[3].replace("-", "")  # international and national tweaks differ
    assert f.mask("+1 (415) 555-2671") == "+1 (***) ***-2671"


def test_phone_other_regions() -> None:
    gb = fmt("phone", region="GB")
    tokens = round_trip(gb, ["020 7946 0958", "+44 20 7946 0958", "+33 1 23 45 67 89"])
    assert tokens[1].startswith("+44 ") and tokens[2].startswith("+33 ")


def test_phone_refusals() -> None:
    f = fmt("phone")
    values = ["+683 4002", "011 44 20 7946 0958", "call 415 555 2671", "415 555 2671 x12", "12", "+1 415+555"]
    out = f.tokenize_batch(cipher(f), values, TWEAK, 1)
    assert_error(out[0], "too few national digits .* 1,000,000", "4002")
    assert_error(out[1], "leading \\+", "7946")
    for result, value in zip(out[2:], values[2:], strict=True):
        assert_error(result, "only digits, spaces|not a possible|not a phone", value)
    assert_error(
        f.detokenize_batch(cipher(f), ["+999 123456"], TWEAK)[0], "unknown country calling code", "123456"
    )


# -- email --------------------------------------------------------------------------------


def test_email_local_part_encrypted_domain_kept_and_normalised() -> None:
    f = fmt("email")
    tokens = round_trip(f, ["John.Smith@Example.COM", "ab+sales@x.org", "first_last-9@mail.co.uk"])
    assert tokens[0].endswith("@example.com") and tokens[0][4] == "." and len(tokens[0]) == 22
    assert re.fullmatch(r"[0-9a-z]{2}\+[0-9a-z]{5}@x\.org", tokens[1])
    assert tokens[2][5] == "_" and tokens[2][10] == "-"
    assert f.detokenize_batch(cipher(f), [tokens[0].upper()], TWEAK) == ["john.smith@example.com"]
    assert f.mask("John.Smith@Example.COM") == "j***@example.com"


def test_email_domain_is_bound_into_the_tweak() -> None:
    f = fmt("email")
    a, b = tokens_of(f, ["someone@a.example", "someone@b.example"])
    assert a.split("@")[0] != b.split("@")[0]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("a.b@x.io", "at least 4 are needed for an FF1 domain of at least 1,000,000"),
        ('"john doe"@x.com', "quoted local parts are not supported"),
        ("john..doe@x.com", "dot-atom"),
        (".john@x.com", "dot-atom"),
        ("jöhn@x.com", "ASCII address"),
        ("john.doe", "ASCII address"),
        ("john@-x.com", "host name"),
        ("j" * 65 + "@x.com", "ASCII address"),
    ],
)
def test_email_refusals(value: str, match: str) -> None:
    f = fmt("email")
    assert_error(f.tokenize_batch(cipher(f), [value], TWEAK, 1)[0], match, value)


# -- custom -------------------------------------------------------------------------------


def test_custom_keeps_named_groups() -> None:
    f = fmt(
        "custom", alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", pattern=r"(?P<keep>[A-Z]{2})-[0-9A-Z]{8}"
    )
    tokens = round_trip(f, ["AB-12345678", "ZZ-ABCDEFGH"])
    assert tokens[0][:3] == "AB-" and tokens[1][:3] == "ZZ-"
    assert f.mask("AB-12345678") == "AB-********"
    assert_error(
        f.tokenize_batch(cipher(f), ["ab-12345678"], TWEAK, 1)[0],
        "does not match the format's pattern",
        "ab-1",
    )
    g = fmt("custom", alphabet="0123456789", pattern=r"(?P<keep_area>\d{3})-\d{3}(?P<keep_x>-)\d{4}")
    assert round_trip(g, ["415-555-2671"])[0][:4] == "415-"


def test_custom_refuses_tokens_the_pattern_would_not_match() -> None:
    f = fmt(
        "custom", alphabet="0123456789ABCDEF", pattern=r"\d{8}"
    )  # the pattern is narrower than the alphabet
    values = [f"{i:08d}" for i in range(40)]
    out = f.tokenize_batch(cipher(f), values, TWEAK, 1)
    refused = [r for r in out if isinstance(r, InvalidArgument)]
    assert refused and all("would not match the format's pattern" in str(r) for r in refused)
    good = [r for r in out if isinstance(r, str)]
    assert all(re.fullmatch(r"\d{8}", t) for t in good)
