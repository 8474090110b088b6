"""The schema of every verb's ``--json`` answer (sgpy/cli_schema.json): it names every verb of the parser and
nothing else, docs/cli.rst documents every key it gives, and the answers the command line prints without a
device (``sense``, ``completion``, the error object of each kind of failure) match it exactly.  The device
verbs are checked against it in the sandbox (tests/device/test_cli_schema.py)."""

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from sgpy.cli import EXIT_NO_DEVICE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, JSON_SCHEMA_PATH, build_parser, main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cli_schema_check  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCHEMA = cli_schema_check.load()

#: The docs/cli.rst section that documents a verb, where it is not the verb's own name.
SECTIONS = {"vpd": "inq", "read": "read and write", "write": "read and write", "completion": "Shell completion"}


def run(capsys, *argv) -> Tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def verbs() -> Dict[str, argparse.ArgumentParser]:
    """The verbs of the parser and their own parsers."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the parser has no verbs")


def walk(schema: Any, where: str = "$") -> Iterator[Tuple[str, Dict[str, Any]]]:
    """Every schema object in ``schema`` with its place."""
    if isinstance(schema, dict):
        if any(k in schema for k in ("type", "$ref", "anyOf", "properties")):
            yield where, schema
        for key, value in schema.items():
            if key in ("properties", "patternProperties", "variants", "$defs"):
                for name, sub in value.items():
                    yield from walk(sub, f"{where}.{name}")
            elif key in ("items", "additionalProperties"):
                yield from walk(value, f"{where}/{key}")
            elif key == "anyOf":
                for i, sub in enumerate(value):
                    yield from walk(sub, f"{where}/anyOf[{i}]")


def test_the_schema_file_is_beside_the_module_and_uses_only_what_the_check_knows():
    assert Path(JSON_SCHEMA_PATH) == REPO / "sgpy" / "cli_schema.json"
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    places = list(walk(SCHEMA))
    assert len(places) > 100
    for where, schema in places:
        assert set(schema) <= cli_schema_check.KEYWORDS, where
        if "$ref" in schema:
            assert schema["$ref"].removeprefix("#/$defs/") in SCHEMA["$defs"], where
        for name in schema["type"] if isinstance(schema.get("type"), list) else [schema.get("type")]:
            assert name is None or name in cli_schema_check._TYPES, where
        # a key the schema requires is one it describes
        assert set(schema.get("required", ())) <= set(schema.get("properties", {})), where


def test_the_check_finds_a_missing_key_an_extra_key_and_a_wrong_type():
    doc = {"device": "/dev/sg1", "ready": True}
    cli_schema_check.check(doc, "tur")
    assert cli_schema_check.problems({"device": "/dev/sg1"}, SCHEMA["variants"]["tur"], SCHEMA) == \
        ["$: the key 'ready' is missing"]
    assert cli_schema_check.problems({**doc, "extra": 1}, SCHEMA["variants"]["tur"], SCHEMA) == \
        ["$: the key 'extra' is not in the schema"]
    assert cli_schema_check.problems({**doc, "ready": 1}, SCHEMA["variants"]["tur"], SCHEMA) == \
        ["$.ready: int 1 is not boolean"]
    # a large integer's hex string is allowed beside it (with_hex), and must be a string
    big = {"device": "/dev/sg1", "last_lba": 2**60, "last_lba_hex": hex(2**60), "blocks": 2**60 + 1,
           "blocks_hex": 1, "block_size": 512, "capacity_bytes": 2**69, "capacity_bytes_hex": hex(2**69),
           "physical_block_size": None, "lowest_aligned_lba": None, "protection_type": None, "lbpme": None,
           "lbprz": None}
    assert cli_schema_check.problems(big, SCHEMA["variants"]["readcap"], SCHEMA) == \
        ["$.blocks_hex: int 1 is not string"]


def test_every_verb_has_a_schema_and_every_schema_names_a_verb_and_its_options():
    parsers = verbs()
    named = {variant.split()[0] for variant in SCHEMA["variants"]}
    assert named == set(parsers), "verbs without a schema, or schemas of no verb"
    for variant in SCHEMA["variants"]:
        verb, *words = variant.split()
        options = {s for a in parsers[verb]._actions for s in a.option_strings}
        positionals = {(a.metavar or a.dest).upper() for a in parsers[verb]._actions if not a.option_strings}
        for word in words:
            assert word in (options if word.startswith("-") else positionals), f"{variant}: {word}"


def doc_sections() -> Dict[str, str]:
    """docs/cli.rst by section title (``-`` and ``~`` underlines): title -> its text."""
    lines = (REPO / "docs" / "cli.rst").read_text(encoding="utf-8").splitlines()
    heads = [i for i in range(1, len(lines))
             if re.fullmatch(r"([-~])\1{2,}", lines[i]) and len(lines[i]) == len(lines[i - 1])]
    return {lines[i - 1]: "\n".join(lines[i + 1:end - 1])
            for i, end in zip(heads, heads[1:] + [len(lines) + 1])}


def named(key: str, text: str) -> bool:
    """Whether ``text`` names ``key``: as a literal (````key````), or as a key in a JSON literal (``"key":``)."""
    return f"``{key}``" in text or f'"{key}":' in text


def documented_keys(schema: Dict[str, Any]) -> List[str]:
    """The keys of a variant the docs must name: its own, and those of the objects it gives inline
    (``$ref`` objects, the sense data and the error object, are documented once, in their own place)."""
    keys: List[str] = []
    for key, sub in schema.get("properties", {}).items():
        keys.append(key)
        for inner in (sub, sub.get("items", {})):
            if "properties" in inner:
                keys += documented_keys(inner)
    return keys


@pytest.mark.parametrize("variant", list(SCHEMA["variants"]))
def test_docs_name_every_key_of_the_variant_in_the_verbs_section(variant):
    verb = variant.split()[0]
    text = doc_sections()[SECTIONS.get(verb, verb)]
    missing = [k for k in documented_keys(SCHEMA["variants"][variant]) if not named(k, text)]
    assert missing == [], f"docs/cli.rst, section {SECTIONS.get(verb, verb)!r}, does not name {missing}"


def test_docs_name_every_key_of_the_error_object_and_of_sense_data():
    text = (REPO / "docs" / "cli.rst").read_text(encoding="utf-8")
    exit_status = doc_sections()["Exit status"]
    error = SCHEMA["$defs"]["error"]["properties"]["error"]["properties"]
    assert [k for k in error if not named(k, exit_status)] == []
    sense = doc_sections()["sense"]
    assert [k for k in SCHEMA["$defs"]["sense"]["properties"] if not named(k, sense)] == []
    assert "JSON schema" in text and "sgpy/cli_schema.json" in text


# -- what the command line prints without a device ----------------------------------------------


@pytest.mark.parametrize("hexbytes", [
    "70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00",  # fixed, ILLEGAL REQUEST, with no SKS
    "70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 c0 00 02",  # fixed, with a field pointer
    "72 06 29 00 00 00 00 0c 00 0a 80 00 00 00 00 00 00 00 12 34",  # descriptor, with an information descriptor
    "00 00 00 00",  # response code 00h: no sense
])
def test_sense_json_matches_its_schema(capsys, hexbytes):
    code, out, err = run(capsys, "sense", "--json", *hexbytes.split())
    assert code == EXIT_OK, err
    doc = json.loads(out)
    cli_schema_check.check(doc, "sense")
    assert (doc["sense"] is None) == hexbytes.startswith("00")


def test_a_large_information_field_keeps_its_hex_string_and_matches(capsys):
    code, out, err = run(capsys, "sense", "--json", "72 03 11 00 00 00 00 0c 00 0a 80 00 ff ff ff ff ff ff ff f0")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    cli_schema_check.check(doc, "sense")
    assert doc["sense"]["information_hex"] == "0xfffffffffffffff0"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_json_matches_its_schema(capsys, shell):
    code, out, err = run(capsys, "completion", shell, "--json")
    assert code == EXIT_OK, err
    cli_schema_check.check(json.loads(out), "completion")


@pytest.mark.parametrize("argv, status, keys", [
    (["inq", "/dev/sg0", "--hex", "--json"], EXIT_USAGE, set()),  # the parser refuses
    (["readcap", "--json"], EXIT_USAGE, set()),  # a missing argument
    (["sense", "--json", "zz"], EXIT_USAGE, set()),  # the verb refuses
    (["inq", "--json", "/dev/sg-none"], EXIT_NO_DEVICE, set()),
    (["tur", "--json", "/nonexistent/sdz"], EXIT_NO_DEVICE, set()),
    (["raw", "--json", "/dev/sg-none", "c0 00 00 00 00 00"], EXIT_REFUSED, {"risk"}),
    (["write", "--json", "/dev/sg-none", "-i", os.devnull], EXIT_REFUSED, {"risk"}),
])
def test_error_objects_match_their_schema(capsys, argv, status, keys):
    code, out, err = run(capsys, *argv)
    assert code == status, err
    doc = json.loads(out)
    cli_schema_check.check(doc, "error")
    assert doc["error"]["exit_code"] == status
    assert set(doc["error"]) == {"exit_code", "type", "message", "device"} | keys
