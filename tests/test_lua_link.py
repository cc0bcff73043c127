"""Each script is sent with the parts of _lib.lua it uses, and only those (pure, no Redis)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from specstore.core import lua
from specstore.core.lua import LuaScript, library_parts, link

LIBRARY = """-- The heading: what the library is about.
-- (It belongs to no part.)

local unused = 1

-- a count
local function a(x)
  return x + 1
end

-- b calls a
-- (two comment lines)
local function b(x)
  -- a comment inside
  local y = a(x)

  return y
end

local C = {'c'}
"""


def test_the_library_is_cut_into_its_definitions_with_their_comments() -> None:
    parts = dict(library_parts(LIBRARY))
    assert list(parts) == ["unused", "a", "b", "C"]
    assert parts["a"] == "-- a count\nlocal function a(x)\n  return x + 1\nend"
    assert parts["b"].startswith("-- b calls a\n-- (two comment lines)\nlocal function b(x)")
    assert parts["b"].endswith("  return y\nend")
    assert "heading" not in "".join(parts.values())


def test_a_script_gets_what_it_uses_through_other_parts_in_library_order() -> None:
    linked = link("return b(1)", LIBRARY)
    assert re.findall(r"^local (?:function )?(\w+)", linked, re.M) == ["a", "b"]
    assert linked.endswith("\n\nreturn b(1)")


def test_a_name_in_a_comment_pulls_nothing_in() -> None:
    linked = link("-- C and a are named here\nreturn 1", LIBRARY)
    assert linked == "-- C and a are named here\nreturn 1"


@pytest.mark.parametrize("library", ["x = 1\n", "local function a()\nend\n\n-- x\nx = 1\n"])
def test_a_library_line_outside_any_definition_is_refused(library: str) -> None:
    with pytest.raises(ValueError, match="outside any definition"):
        library_parts(library)


SCRIPTS = [value for value in vars(lua).values() if isinstance(value, LuaScript)]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_every_library_name_a_script_uses_is_defined_in_what_it_is_sent(
    script: LuaScript,
) -> None:
    library = resources.files("specstore.scripts").joinpath("_lib.lua").read_text("utf-8")
    names = [name for name, _ in library_parts(library)]
    code = re.sub(r"--[^\n]*", "", script.source)
    defined = set(re.findall(r"^local (?:function )?(\w+)", script.source, re.M))
    used = {name for name in names if re.search(rf"\b{name}\b", code)}
    assert used <= defined
    assert defined & set(names) <= used  # and nothing it does not use


def test_save_is_sent_without_the_writers_it_never_calls() -> None:
    assert "local function lives_in" in lua.SAVE.source
    assert "local function read_loc" in lua.SAVE.source  # (for its other replies)
    for unused in ("bury", "make_live", "write_spec", "now_ms", "read_fence", "spec_rev"):
        assert f"local function {unused}" not in lua.SAVE.source
