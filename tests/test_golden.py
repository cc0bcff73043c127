"""Golden RequestSpec 1.0 documents: the committed bytes are the format.

IF THIS FAILS, THE DOCUMENT FORMAT CHANGED -- RELEASE A NEW SCHEMA VERSION INSTEAD OF
REGENERATING. Documents already stored in Redis were written in this format; code that
encodes the same spec differently, or reads these bytes differently, breaks them (and breaks
older readers during a rolling upgrade). Add a version with its migration steps in
specstore/serializers/schemas/request_spec.py and add golden files for it; keep these ones,
which must go on decoding (through the upgrade steps) and encoding (through the downgrade
steps, with ``write_version=(1, 0)``). Only run ``python -m tests.golden.regenerate --write``
when adding new golden specs.
"""

from __future__ import annotations

import json

import pytest

from specstore.model import RequestSpec
from specstore.serializers import DEFAULT_CODEC, MAGIC, json_codec
from tests.golden import regenerate
from tests.golden.regenerate import GOLDEN_SPECS, bin_path, codec, expected_spec, json_path

NAMES = sorted(GOLDEN_SPECS)


def test_golden_files_exist_for_every_golden_spec() -> None:
    assert NAMES == ["minimal", "typical"]
    for name in NAMES:
        assert bin_path(name).name == f"request_spec_1.0_{name}.bin"
        assert bin_path(name).is_file()
        assert json_path(name).is_file()


@pytest.mark.parametrize("name", NAMES)
def test_encoding_the_golden_spec_gives_the_committed_bytes(name: str) -> None:
    committed = bin_path(name).read_bytes()
    assert codec().encode(GOLDEN_SPECS[name]()) == committed


@pytest.mark.parametrize("name", NAMES)
def test_decoding_the_committed_bytes_gives_the_committed_spec(name: str) -> None:
    decoded = DEFAULT_CODEC.decode(bin_path(name).read_bytes())
    document = json.loads(json_path(name).read_text(encoding="utf-8"))
    assert (document["schema"], document["version"]) == ("RequestSpec", "1.0")
    assert json_codec.from_json_document(document) == decoded
    assert decoded == expected_spec(name)
    assert decoded.newer_minor_fields is None


@pytest.mark.parametrize("name", NAMES)
def test_committed_bytes_are_a_request_spec_1_0_document(name: str) -> None:
    data = bin_path(name).read_bytes()
    assert data.startswith(MAGIC)
    header = DEFAULT_CODEC.header(data)
    assert (header.schema, header.version) == ("RequestSpec", (1, 0))


def test_typical_golden_spec_holds_every_kind_of_value() -> None:
    """The typical golden document must keep exercising every encoding path."""
    spec = GOLDEN_SPECS["typical"]()
    decoded = DEFAULT_CODEC.decode(bin_path("typical").read_bytes())
    assert decoded.image is not None
    assert decoded.image.created_at is not None
    assert decoded.image.created_at.microsecond == 123456
    assert decoded.image.updated_at is not None
    assert decoded.image.updated_at.year == 1969  # before the epoch
    assert decoded.numa_topology is not None
    assert decoded.numa_topology.cells[0].pcpuset == {0, 1}
    assert decoded.numa_topology.cells[0].cpu_pinning == {0: 4, 1: 5}
    assert decoded.instance_group is not None
    assert decoded.instance_group.members == []
    assert spec.retry is not None
    assert decoded.retry is None
    assert isinstance(decoded.image.properties["hw_numa"], dict)


def test_golden_specs_are_deterministic() -> None:
    for name, build in GOLDEN_SPECS.items():
        first, second = build(), build()
        assert isinstance(first, RequestSpec)
        assert first == second, name
        assert codec().encode(first) == codec().encode(second), name


def test_regenerate_check_mode_finds_nothing_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert regenerate.main([]) == 0
    assert capsys.readouterr().out.strip() == "golden files are up to date"
