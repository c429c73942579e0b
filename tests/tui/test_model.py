"""The console's records (`tui.model`) take their fields from the API's schema: one reader
fills them all, and every field a record has is a field of its schema model, but for the
few the console adds itself, each named here. A field renamed or dropped in the schema
fails here instead of leaving the console showing a default."""

from __future__ import annotations

import dataclasses

import pytest

from tssnode import schema
from tui import model

#: record → (its schema model, the fields the console adds that the schema does not have)
RECORDS = {
    model.Status: (schema.Status, {"event_seq"}),
    model.Peer: (schema.Peer, set()),
    model.Validator: (schema.Validator, set()),
    model.Addresses: (schema.Addresses, set()),
    model.Child: (schema.Derived, set()),
    model.Key: (schema.Key, {"children"}),
    model.Blame: (schema.Blame, set()),
    model.Signature: (schema.Signature, set()),
    model.Session: (schema.Session, set()),
    model.Certificate: (schema.Certificate, set()),
    model.Tx: (schema.Transaction, set()),
    model.Block: (schema.Block, {"full"}),
    model.BridgeInfo: (schema.BridgeInfo, {"evm_watch"}),
    model.ReleaseInfo: (schema.ReleaseInfo, set()),
    model.DepositAddress: (schema.DepositAddress, set()),
    model.MintSignature: (schema.MintSignature, set()),
    model.Deposit: (schema.Deposit, set()),
    model.ReleaseAttempt: (schema.ReleaseAttempt, set()),
    model.Release: (schema.Release, set()),
}


@pytest.mark.parametrize("record", list(RECORDS), ids=lambda r: r.__name__)
def test_every_field_of_a_record_is_its_schema_model_s(record: type) -> None:
    model_, own = RECORDS[record]
    names: dict[str, str] = getattr(record, "_names", {})
    fields = {f.name for f in dataclasses.fields(record)}
    unknown = {f for f in fields - own if names.get(f, f) not in model_.model_fields}
    assert not unknown, f"{record.__name__}: not in schema.{model_.__name__}: {sorted(unknown)}"
    assert own <= fields


def test_every_record_is_listed() -> None:
    records = {
        v for v in vars(model).values() if dataclasses.is_dataclass(v) and isinstance(v, type)
    }
    assert records == set(RECORDS)


def test_a_record_reads_what_validates_and_keeps_its_defaults_for_the_rest() -> None:
    d = {
        "signature_id": "ab",
        "status": "done",
        "key_id": 7,  # not text: left at the default
        "signers": ["x", "y"],
        "blame": {"culprits": [4], "check": "affg", "round": "two"},
        "height": 12.0,  # lax: the integer 12
    }
    sig = model.Signature.from_json(d)
    assert (sig.signature_id, sig.status, sig.key_id, sig.height) == ("ab", "done", "", 12)
    assert sig.signers == ("x", "y")
    assert sig.blame == model.Blame(culprits=("4",), check="affg", round=None)
    # a status a newer node has and this schema does not name is kept as text
    assert model.Deposit.from_json({"status": "burnt"}).status == "burnt"
    assert model.Deposit.from_json({"gHash": "0x01"}).g_hash == "0x01"
