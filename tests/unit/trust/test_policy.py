"""The containers policy.json: what is read, what is refused (with line and column), which
scope applies to an image, and the signedIdentity rules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci import reference as refs
from portside.trust import keys, policy


def pub(tmp_path: Path) -> Path:
    path = tmp_path / "k.pub"
    path.write_bytes(keys.generate(b"").public_pem)
    return path


def parse(doc: object, base: Path = Path(".")) -> policy.Policy:
    return policy.parse(json.dumps(doc, indent=2), "policy.json", base)


def test_scopes_most_specific_first(tmp_path: Path) -> None:
    pub(tmp_path)
    signed = [{"type": "sigstoreSigned", "keyPath": "k.pub"}]
    p = parse({"default": [{"type": "reject"}], "transports": {"docker": {
        "reg:5000/shop/web:1": [{"type": "insecureAcceptAnything"}],
        "reg:5000/shop": signed,
        "reg:5000": [{"type": "reject"}],
        "*.example.com": [{"type": "insecureAcceptAnything"}],
        "": [{"type": "reject"}]}}}, tmp_path)
    def scope(name: str) -> str:
        return p.rule_for(refs.parse(name)).scope
    assert scope("reg:5000/shop/web:1") == 'transports.docker["reg:5000/shop/web:1"]'
    assert scope("reg:5000/shop/web:2") == 'transports.docker["reg:5000/shop"]'
    assert scope("reg:5000/shop/team/api:1") == 'transports.docker["reg:5000/shop"]'
    assert scope("reg:5000/other:1") == 'transports.docker["reg:5000"]'
    assert scope("a.b.example.com/x:1") == 'transports.docker["*.example.com"]'
    assert scope("quay.io/x:1") == 'transports.docker[""]'
    assert parse({"default": [{"type": "insecureAcceptAnything"}]}).rule_for(
        refs.parse("busybox")).scope == "default"


def test_key_data_is_base64_pem(tmp_path: Path) -> None:
    data = base64.b64encode(pub(tmp_path).read_bytes()).decode()
    p = parse({"default": [{"type": "sigstoreSigned", "keyData": data,
                            "signedIdentity": {"type": "matchRepository"}}]})
    (req,) = p.default
    assert len(req.keys) == 1 and req.identity.type == "matchRepository"


@pytest.mark.parametrize("text, message", [
    ('{"default": [{"type": "reject"}],\n "transport": {}}',
     "policy.json: line 2 column 2: unknown field 'transport' in the policy"),
    ('{"default": [{"type": "reject"}]\n  "transports": {}}',
     "policy.json: line 2 column 3: Expecting ',' delimiter"),
    ('{"default": [{"type": "reject", "keyPath": "x"}]}',
     "policy.json: line 1 column 33: unknown field 'keyPath' in default[0]"),
    ('{"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}',
     "policy.json: line 1 column 23: default[0]: GPG signatures (signedBy) are not supported"
     " by portside"),
    ('{"default": [{"type": "nope"}]}',
     "policy.json: line 1 column 23: default[0]: unknown requirement type 'nope'"),
    ('{"default": []}', "policy.json: default must be a non-empty list of requirements"),
    ('{"transports": {}}', 'policy.json: "default" is required'),
    ('{"default": [{"type": "sigstoreSigned"}]}',
     "policy.json: default[0]: exactly one of keyPath, keyPaths, keyData, keyDatas"),
    ('{"default": [{"type": "sigstoreSigned", "keyPath": "missing.pub"}]}',
     "cannot read key: No such file or directory"),
    ('{"default": [{"type": "reject"}], "transports": {"docker": {"x": [{"type": "reject"}]},'
     ' "carrier-pigeon": {}}}', "unknown field 'carrier-pigeon' in transports"),
])
def test_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(policy.PolicyInvalid) as caught:
        policy.parse(text, "policy.json", Path("/nonexistent"))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("identity, image, signed, ok", [
    ({"type": "matchRepository"}, "r/a:1", "r/a:2", True),
    ({"type": "matchRepository"}, "r/a:1", "r/b:1", False),
    ({"type": "matchExact"}, "r/a:1", "r/a:1", True),
    ({"type": "matchExact"}, "r/a:1", "r/a:2", False),
    (None, "r/a:1", "r/a:1", True),  # matchRepoDigestOrExact, tagged: exact
    (None, "r/a:1", "r/a", False),
    (None, "r/a@sha256:" + "a" * 64, "r/a:7", True),  # by digest: the repository
    ({"type": "exactReference", "dockerReference": "r/x:9"}, "r/a:1", "r/x:9", True),
    ({"type": "exactRepository", "dockerRepository": "r/x"}, "r/a:1", "r/x:3", True),
    ({"type": "remapIdentity", "prefix": "mirror.example/r", "signedPrefix": "r.example/r"},
     "mirror.example/r/a:1", "r.example/r/a:1", True),
    ({"type": "remapIdentity", "prefix": "mirror.example/r", "signedPrefix": "r.example/r"},
     "mirror.example/r/a:1", "mirror.example/r/a:1", False),
])
def test_signed_identity(identity: dict[str, str] | None, image: str, signed: str,
                         ok: bool, tmp_path: Path) -> None:
    pub(tmp_path)
    req = {"type": "sigstoreSigned", "keyPath": "k.pub"}
    if identity:
        req["signedIdentity"] = identity  # type: ignore[assignment]
    (parsed,) = parse({"default": [req]}, tmp_path).default
    assert parsed.identity.matches(refs.parse(image), signed) is ok


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.sampled_from(["default", "transports", "type",
                                                       "docker", "keyData", "x"]), kids,
                                      max_size=3), max_leaves=12))
def test_any_json_is_a_policy_or_a_one_line_refusal(doc: object) -> None:
    try:
        policy.parse(json.dumps(doc), "p.json", Path("/nonexistent"))
    except policy.PolicyInvalid as exc:
        assert "\n" not in str(exc)
    except keys.KeyFileError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_policy_or_a_one_line_refusal(text: str) -> None:
    try:
        policy.parse(text, "p.json", Path("/nonexistent"))
    except (policy.PolicyInvalid, keys.KeyFileError) as exc:
        assert "\n" not in str(exc)
