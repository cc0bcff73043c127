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


def test_a_name_in_a_whole_line_comment_pulls_nothing_in() -> None:
    linked = link("-- C and a are named here\n  -- and b\nreturn 1", LIBRARY)
    assert linked == "-- C and a are named here\n  -- and b\nreturn 1"


@pytest.mark.parametrize(
    "body",
    [
        "local sep = '--' ; return a(1)",  # '--' in a string is no comment
        'local sep = "x--y" return a(1)',
        "return 1  -- a(1) is not called",  # after code: sent anyway, for nothing
    ],
)
def test_a_name_anywhere_but_in_a_whole_line_comment_pulls_its_part_in(body: str) -> None:
    assert "local function a(x)" in link(body, LIBRARY)


@pytest.mark.parametrize(
    "body",
    ["local s = [[\n-- a(1)\n]]", "--[[ long\ncomment ]] return 1", "local s = 'x\\\n-- a'"],
)
def test_text_where_a_comment_line_could_be_in_a_string_is_refused(body: str) -> None:
    with pytest.raises(ValueError, match="long brackets or a string continued"):
        link(body, LIBRARY)
    with pytest.raises(ValueError, match="long brackets or a string continued"):
        library_parts(LIBRARY + "\nlocal function d()\n" + body + "\nend\n")


@pytest.mark.parametrize("library", ["x = 1\n", "local function a()\nend\n\n-- x\nx = 1\n"])
def test_a_library_line_outside_any_definition_is_refused(library: str) -> None:
    with pytest.raises(ValueError, match="outside any definition"):
        library_parts(library)


def test_a_library_definition_of_several_names_is_refused() -> None:
    with pytest.raises(ValueError, match="one name a library definition"):
        library_parts("local A, B = 1, 2\n")


SCRIPTS = [value for value in vars(lua).values() if isinstance(value, LuaScript)]


LUA_TOKENS = re.compile(
    r"""--[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|([A-Za-z_]\w*)"""
)
"""Comments, quoted strings and names: a Lua lexer's view, not the linker's."""


def code_names(source: str) -> set[str]:
    """The names in ``source`` outside comments and strings."""
    return {found.group(1) for found in LUA_TOKENS.finditer(source) if found.group(1)}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_every_library_name_a_script_uses_is_defined_in_what_it_is_sent(
    script: LuaScript,
) -> None:
    library = resources.files("specstore.scripts").joinpath("_lib.lua").read_text("utf-8")
    names = {name for name, _ in library_parts(library)}
    defined = set(re.findall(r"^local (?:function )?(\w+)", script.source, re.M))
    assert code_names(script.source) & names <= defined
    assert defined & names <= code_names(script.source)  # and nothing it does not use


def test_save_is_sent_without_the_writers_it_never_calls() -> None:
    assert "local function lives_in" in lua.SAVE.source
    assert "local function read_loc" in lua.SAVE.source  # (for its other replies)
    for unused in ("bury", "make_live", "write_spec", "now_ms", "read_fence", "spec_rev"):
        assert f"local function {unused}" not in lua.SAVE.source
