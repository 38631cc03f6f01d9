"""Record helpers against the in-process fake: paths, values, text form, batching, errors."""

from __future__ import annotations

import base64
import copy
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from keysvc_client import BatchError, DecryptionError, FailedPreconditionError, NotFoundError
from keysvc_client.records import (
    CiphertextFormatError,
    Drop,
    Encrypt,
    Mask,
    RecordBatchError,
    Schema,
    Tokenize,
    decode_text,
    encode_text,
    protect_record,
    protect_records,
    reveal_record,
    reveal_records,
)
from keysvc_client.testing import FakeKeyService


@pytest.fixture
def ks() -> FakeKeyService:
    return FakeKeyService(
        keys={
            "customer-pii": "encrypt",
            "notes": "encrypt",
            "pan": ("fpe", "pan"),
            "digits": ("fpe", "digits"),
        }
    )


ORDER: dict[str, Any] = {
    "order_id": "A-1001",
    "payment": {"card_number": "4111 1111 1111 1111", "cvv": "737", "expiry": "12/29"},
    "customer": {"name": "Ada", "ssn": "123-45-6789", "phone": "+1 555 867 5309"},
    "calls": [
        {"agent": "bo", "notes": "Customer read card number back; verified."},
        None,
        {"agent": "cy"},
        {"agent": "di", "notes": None},
    ],
    "tags": ["vip", None, "callback"],
    "amount_cents": 12345,
    "attachment": b"\x00\xffbinary",
    "preferences": {"channels": ["sms", "email"], "quiet_hours": [22, 7]},
}

SCHEMA = Schema(
    {
        "payment.card_number": Tokenize("pan"),
        "payment.cvv": Drop(),
        "customer.ssn": Encrypt("customer-pii"),
        "customer.phone": Encrypt("customer-pii"),
        "calls[].notes": Encrypt("notes"),
        "tags[]": Encrypt("notes"),
        "amount_cents": Encrypt("customer-pii"),
        "attachment": Encrypt("customer-pii"),
        "preferences": Encrypt("customer-pii"),
        "payment.expiry": Mask(keep_last=0),
    },
    context={"app": "orders"},
)


def methods(ks: FakeKeyService) -> Counter[tuple[str, str]]:
    return Counter((c.method, c.key) for c in ks.calls if c.method not in ("CreateKey", "RotateKey"))


def test_round_trip_nested_lists_missing_none_and_types(ks):
    original = copy.deepcopy(ORDER)
    stored = protect_record(ks, ORDER, SCHEMA)
    assert original == ORDER  # the input is never modified

    assert "cvv" not in stored["payment"]
    assert stored["payment"]["expiry"] == "**/**"
    token = stored["payment"]["card_number"]
    assert token != ORDER["payment"]["card_number"] and token.endswith("1111") and len(token) == 19
    assert stored["customer"]["ssn"].startswith("ks1:")
    assert stored["amount_cents"].startswith("ks1j:")
    assert stored["attachment"].startswith("ks1b:")
    assert stored["preferences"].startswith("ks1j:")
    assert stored["calls"][0]["notes"].startswith("ks1:")
    assert stored["calls"][1] is None and stored["calls"][2] == {"agent": "cy"}
    assert stored["calls"][3] == {"agent": "di", "notes": None}
    assert stored["tags"][1] is None and stored["tags"][0].startswith("ks1:")
    assert stored["order_id"] == "A-1001" and stored["customer"]["name"] == "Ada"

    revealed = reveal_record(ks, stored, SCHEMA, purpose="chargeback")
    expected = copy.deepcopy(ORDER)
    del expected["payment"]["cvv"]
    expected["payment"]["expiry"] = "**/**"
    assert revealed == expected
    assert type(revealed["amount_cents"]) is int and type(revealed["attachment"]) is bytes


def test_one_rpc_per_key_however_many_fields_and_records(ks):
    records = [copy.deepcopy(ORDER) for _ in range(25)]
    ks.calls.clear()
    stored = protect_records(ks, records, SCHEMA)
    assert methods(ks) == Counter(
        {("Encrypt", "customer-pii"): 1, ("Encrypt", "notes"): 1, ("Tokenize", "pan"): 1}
    )
    # every value of a key travels in its one request: 25 records x 5 fields, 25 x (1 note + 2 tags)
    assert {c.key: c.items for c in ks.calls} == {"customer-pii": 125, "notes": 75, "pan": 25}

    ks.calls.clear()
    assert len(reveal_records(ks, stored, SCHEMA, purpose="qa")) == 25
    # all ciphertexts, whatever their key, go in one Decrypt
    assert methods(ks) == Counter({("Decrypt", ""): 1, ("Detokenize", "pan"): 1})
    assert [c.items for c in ks.calls] == [200, 25]
    assert ks.calls[1].purpose == "qa"


def test_max_batch_splits_into_ceil_n_over_max_rpcs(ks):
    schema = Schema({"v[]": Encrypt("notes")})
    stored = protect_record(ks, {"v": [str(i) for i in range(10)]}, schema)
    ks.calls.clear()
    protect_record(ks, {"v": [str(i) for i in range(10)]}, schema, max_batch=4)
    assert [c.items for c in ks.calls] == [4, 4, 2]
    ks.calls.clear()
    assert reveal_record(ks, stored, schema, purpose="p", max_batch=3)["v"] == [str(i) for i in range(10)]
    assert [c.items for c in ks.calls] == [3, 3, 3, 1]


def test_nothing_to_protect_makes_no_rpc(ks):
    ks.calls.clear()
    assert protect_records(ks, [], SCHEMA) == []
    assert protect_record(ks, {"order_id": "x", "customer": None}, SCHEMA) == {
        "order_id": "x",
        "customer": None,
    }
    assert reveal_record(ks, {"calls": []}, SCHEMA, purpose="p") == {"calls": []}
    assert ks.calls == []


def test_distinct_tweaks_are_distinct_requests(ks):
    schema = Schema({"a": Tokenize("digits"), "b": Tokenize("digits", tweak=b"b"), "c": Tokenize("digits")})
    ks.calls.clear()
    stored = protect_record(ks, {"a": "123456789", "b": "123456789", "c": "123456789"}, schema)
    assert [c.method for c in ks.calls] == ["Tokenize", "Tokenize"]
    assert stored["a"] == stored["c"] != stored["b"]
    assert reveal_record(ks, stored, schema, purpose="p") == {
        "a": "123456789",
        "b": "123456789",
        "c": "123456789",
    }


def test_context_binds_the_field_path_and_the_schema_context(ks):
    stored = protect_record(
        ks, {"a": "secret", "b": "other"}, Schema({"a": Encrypt("notes"), "b": Encrypt("notes")})
    )
    swapped = {"a": stored["b"], "b": stored["a"]}
    with pytest.raises(RecordBatchError) as info:
        reveal_record(ks, swapped, Schema({"a": Encrypt("notes"), "b": Encrypt("notes")}), purpose="p")
    assert sorted(f.path for f in info.value.fields) == ["a", "b"]
    assert all(isinstance(f.error, DecryptionError) for f in info.value.fields)
    with pytest.raises(RecordBatchError):
        reveal_record(ks, stored, Schema({"a": Encrypt("notes")}, context={"tenant": "t2"}), purpose="p")
    # the documented context decrypts a stored value without the helpers
    schema = Schema({"a": Encrypt("notes")})
    ciphertext, value_type = decode_text(stored["a"])
    assert ks.decrypt([ciphertext], context=schema.field_context("a", value_type)) == [b"secret"]


def test_value_type_is_authenticated(ks):
    schema = Schema({"a": Encrypt("notes")})
    stored = protect_record(ks, {"a": b"raw"}, schema)
    relabelled = {"a": "ks1:" + stored["a"].removeprefix("ks1b:")}
    with pytest.raises(RecordBatchError):
        reveal_record(ks, relabelled, schema, purpose="p")


def test_partial_failure_reports_records_and_fields(ks):
    schema = Schema({"ssn": Encrypt("customer-pii"), "items[].card": Tokenize("pan")})
    records = [{"ssn": "1", "items": [{"card": "4111111111111111"}]}, {"ssn": "2", "items": [{"card": "12"}]}]
    with pytest.raises(RecordBatchError) as info:
        protect_records(ks, records, schema)
    err = info.value
    assert isinstance(err, BatchError)
    assert [f.path for f in err.fields] == ["items[0].card"] and err.fields[0].record == 1
    assert err.results[0].ok and err.results[0].value is not None
    assert err.results[0].value["ssn"].startswith("ks1:")
    assert not err.results[1].ok and err.results[1].value is None
    assert [i for i, _ in err.errors] == [1]
    assert "12" not in str(err)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "ks2:AQEB",
        "ks1:",
        "ks1:AQEDcGlp=",
        "ks1:not base64!",
        "ks1:" + base64.urlsafe_b64encode(b"\x02" * 40).decode().rstrip("="),
        "ks1:" + base64.urlsafe_b64encode(b"\x01\x02" + b"\x03" * 40).decode().rstrip("="),
        "ks1:AQE",
        12345,
    ],
)
def test_anything_but_the_text_form_is_refused_clearly(ks, text):
    with pytest.raises(CiphertextFormatError) as info:
        reveal_record(ks, {"customer": {"ssn": text}}, SCHEMA, purpose="p")
    assert "customer.ssn" in str(info.value)
    assert "4111111111111111" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_canonical_base64_is_refused(ks):
    good = protect_record(ks, {"a": "x"}, Schema({"a": Encrypt("notes")}))["a"]
    last = good[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = [good[:-1] + c for c in alphabet if c != last]
    decoded = [v for v in variants if _decodes_to_same(v, good)]
    assert decoded, "expected a non-canonical alias of the last character"
    for v in decoded:
        with pytest.raises(CiphertextFormatError):
            decode_text(v)


def _decodes_to_same(variant: str, good: str) -> bool:
    pad = "=" * (-len(good.split(":", 1)[1]) % 4)
    a = base64.urlsafe_b64decode(variant.split(":", 1)[1] + pad)
    b = base64.urlsafe_b64decode(good.split(":", 1)[1] + pad)
    return a == b


def test_text_form_round_trip():
    ct = bytes([1, 1, 3]) + b"abc" + b"\x00\x00\x00\x02" + b"n" * 12 + b"t" * 20
    for value_type in ("str", "bytes", "json"):
        text = encode_text(ct, value_type)
        assert "=" not in text and "+" not in text and "/" not in text
        assert decode_text(text) == (ct, value_type)


def test_unsupported_values_are_type_errors(ks):
    with pytest.raises(TypeError, match=r"customer\.ssn"):
        protect_record(ks, {"customer": {"ssn": object()}}, SCHEMA)
    with pytest.raises(TypeError, match=r"payment\.card_number"):
        protect_record(ks, {"payment": {"card_number": 4111111111111111}}, SCHEMA)
    with pytest.raises(TypeError, match="not JSON"):
        protect_record(ks, {"amount_cents": {"x": float("nan")}}, SCHEMA)
    with pytest.raises(TypeError, match="expected a list"):
        protect_record(ks, {"calls": {"notes": "x"}}, SCHEMA)
    with pytest.raises(TypeError, match="expected a mapping"):
        protect_record(ks, {"customer": "Ada"}, SCHEMA)
    with pytest.raises(TypeError, match=r"calls\[0\]"):
        protect_record(ks, {"calls": ["x"]}, SCHEMA)
    with pytest.raises(TypeError, match="token must be a str"):
        reveal_record(ks, {"payment": {"card_number": 1}}, SCHEMA, purpose="p")


def test_purpose_is_required(ks):
    with pytest.raises(ValueError, match="purpose"):
        reveal_record(ks, {}, SCHEMA, purpose=" ")
    with pytest.raises(TypeError):
        reveal_record(ks, {}, SCHEMA)  # type: ignore[call-arg]


def test_service_errors_surface_typed(ks):
    with pytest.raises(NotFoundError):
        protect_record(ks, {"a": "x"}, Schema({"a": Encrypt("no-such-key")}))
    with pytest.raises(FailedPreconditionError):
        protect_record(ks, {"a": "x"}, Schema({"a": Encrypt("digits")}))
    with pytest.raises(FailedPreconditionError):
        protect_record(ks, {"a": "123456789"}, Schema({"a": Tokenize("notes")}))


@pytest.mark.parametrize(
    ("mask", "value", "expected"),
    [
        (Mask(), "4111-1111-1111-1111", "****-****-****-1111"),
        (Mask(keep_first=6), "4111111111111111", "411111******1111"),
        (Mask(), "123-45-6789", "***-**-6789"),
        (Mask(), "1234", "****"),
        (Mask(keep_last=1), "ab", "*b"),
        (Mask(keep_last=0, char="#"), "a b", "# #"),
        (Mask(replacement="[REDACTED]"), "call me at 555", "[REDACTED]"),
        (Mask(), 5551234567, "******4567"),
    ],
)
def test_masks(ks, mask, value, expected):
    assert protect_record(ks, {"f": value}, Schema({"f": mask})) == {"f": expected}


def test_mask_refuses_bytes_and_bools(ks):
    for value in (b"1234", True):
        with pytest.raises(TypeError):
            protect_record(ks, {"f": value}, Schema({"f": Mask()}))


@pytest.mark.parametrize(
    ("fields", "context", "error"),
    [
        ({"a": Encrypt("k"), "a.b": Encrypt("k")}, None, ValueError),
        ({"a[]": Encrypt("k"), "a[].b": Encrypt("k")}, None, ValueError),
        ({"a.": Encrypt("k")}, None, ValueError),
        ({"": Encrypt("k")}, None, ValueError),
        ({"a[0]": Encrypt("k")}, None, ValueError),
        ({"tags[]": Drop()}, None, ValueError),
        ({"a": Encrypt("")}, None, ValueError),
        ({"a": "encrypt"}, None, TypeError),
        ({"a": Encrypt("k")}, {"field": "x"}, ValueError),
        ({"a": Encrypt("k")}, {"encoding": "x"}, ValueError),
        ({"a": Encrypt("k")}, {"n": 1}, TypeError),
    ],
)
def test_schema_is_checked(fields, context, error):
    with pytest.raises(error):
        Schema(fields, context=context)


def test_mask_arguments_are_checked():
    with pytest.raises(ValueError):
        Mask(keep_last=-1)
    with pytest.raises(ValueError):
        Mask(char="**")


def test_schema_exposes_fields_and_context():
    schema = Schema({"a": Encrypt("k"), "b[].c": Drop()}, context={"app": "x"})
    assert list(schema.fields) == ["a", "b[].c"] and schema.context == {"app": "x"}
    assert schema.field_context("a") == {"app": "x", "field": "a"}
    assert schema.field_context("a", "json") == {"app": "x", "field": "a", "encoding": "json"}
    assert "Encrypt" in repr(schema)


def test_drop_on_nested_lists(ks):
    schema = Schema({"calls[].recording_url": Drop(), "calls[].notes": Encrypt("notes")})
    stored = protect_record(
        ks, {"calls": [{"recording_url": "s3://x", "notes": "n"}, {"notes": "m"}]}, schema
    )
    assert [sorted(c) for c in stored["calls"]] == [["notes"], ["notes"]]
    revealed = reveal_record(ks, stored, schema, purpose="p")
    assert revealed == {"calls": [{"notes": "n"}, {"notes": "m"}]}


def test_masked_reveal_passes_through(ks):
    schema = Schema({"card": Tokenize("pan")})
    stored = protect_record(ks, {"card": "4111111111111111"}, schema)
    assert reveal_record(ks, stored, schema, purpose="agent view", masked=True) == {
        "card": "************1111"
    }


def _readme_blocks() -> list[str]:
    readme = (Path(__file__).parents[3] / "clients" / "python" / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, flags=re.S)


def test_the_readme_examples_run_against_the_fake():
    blocks = _readme_blocks()
    order_example = next(b for b in blocks if "ORDER_SCHEMA = Schema(" in b)
    by_hand = next(b for b in blocks if "decode_text(stored" in b)
    app_test = next(b for b in blocks if "def test_orders_are_stored_protected" in b)
    client = FakeKeyService(keys={"customer-pii": "encrypt", "call-notes": "encrypt", "pan": ("fpe", "pan")})
    namespace: dict[str, Any] = {"client": client}
    exec(order_example, namespace)
    stored = namespace["stored"]
    assert stored["customer"]["ssn"].startswith("ks1:AQEMY3VzdG9tZXItcGlp")
    assert stored["notes"].startswith("ks1:AQEKY2FsbC1ub3Rlcw")
    assert stored["payment"]["card_display"] == "**** **** **** 1111"
    assert stored["calls"][1] == {"call_id": "c-2", "transcript": None}
    exec(by_hand, namespace)
    exec(app_test, namespace)
    namespace["test_orders_are_stored_protected"]()


def test_records_must_be_mappings(ks):
    with pytest.raises(TypeError, match="record 1"):
        protect_records(ks, [{}, None], SCHEMA)
    with pytest.raises(TypeError, match="record 0"):
        reveal_records(ks, [["x"]], SCHEMA, purpose="p")
