"""``sgpy completion bash|zsh``: scripts generated from the parser, run in the real shells.

bash: the script is sourced in ``bash --norc`` and its completion function
called as bash calls it (``COMP_LINE``, ``COMP_POINT``, ``COMP_WORDS``,
``COMP_CWORD``); ``COMPREPLY`` is what bash would offer.  zsh: an
interactive ``zsh -f`` in a pseudo-terminal (zsh's zpty module) loads the
script as the completion function ``_sgpy`` through ``compinit``, a TAB is
typed after the words, and every candidate zsh's ``compadd`` receives is
printed.  ``DEVICE`` is pointed at fake nodes in a temporary directory
(``_sgpy_device_glob``), since the host has no /dev/sg*.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from sgpy import cli, completion
from sgpy.cli import EXIT_OK, EXIT_USAGE, PAGE_NAMES, main

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/setup installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def fake_devices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dev")
    for name in ("sg0", "sg1", "sg12", "sda"):
        (d / name).touch()
    (d / "blocks.bin").touch()
    return d


# -- bash -----------------------------------------------------------------------------------------

_BASH_DRIVER = r'''
source "$1"
_sgpy_device_glob="$2/sg[0-9]*"
cd "$2"
while IFS= read -r line; do
    COMP_LINE=$line
    COMP_POINT=${#line}
    read -ra COMP_WORDS <<<"$line"
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    if [[ $line == *" " ]]; then COMP_WORDS+=(""); COMP_CWORD=$((COMP_CWORD + 1)); fi
    COMPREPLY=()
    _sgpy sgpy "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\n' "${COMPREPLY[*]}"
done
'''


def bash_complete(lines: Sequence[str], devices: Path, tmp_path: Path) -> Dict[str, List[str]]:
    """What bash offers after each of ``lines`` (typed up to the cursor)."""
    script = tmp_path / "sgpy.bash"
    script.write_text(completion.script("bash", cli.build_parser(), cli.PAGE_NAMES), encoding="utf-8")
    driver = tmp_path / "driver.bash"
    driver.write_text(_BASH_DRIVER, encoding="utf-8")
    proc = subprocess.run([_shell("bash"), "--norc", "--noprofile", str(driver), str(script), str(devices)],
                          input="".join(line + "\n" for line in lines), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    answers = proc.stdout.split("\n")[:-1]
    assert len(answers) == len(lines), proc.stdout
    return {line: sorted(answer.split()) for line, answer in zip(lines, answers)}


VERBS = sorted(v.name for v in completion.spec(cli.build_parser())[1])

# What bash offers: typed words -> candidates (sorted); "DEV/" stands for the fake /dev directory.
BASH_CASES = {
    "sgpy ": VERBS,
    "sgpy in": ["info", "inq"],
    "sgpy r": ["raw", "read", "readcap"],
    "sgpy list --h": ["--help", "--hosts"],
    "sgpy tur DEV/sg0 --c": ["--count"],
    "sgpy opcodes DEV/sg0 --o": ["--opcode"],
    "sgpy opcodes DEV/sg0 --s": ["--service-action"],
    "sgpy logs DEV/sg0 --a": ["--all"],
    "sgpy info ": ["DEV/sg0", "DEV/sg1", "DEV/sg12"],
    "sgpy info DEV/sg0 --": ["--help", "--json", "--timeout", "--verbose"],
    "sgpy --v": ["--version"],
    "sgpy inq ": ["DEV/sg0", "DEV/sg1", "DEV/sg12"],
    "sgpy inq DEV/sg1": ["DEV/sg1", "DEV/sg12"],
    "sgpy inq --": ["--help", "--hex", "--json", "--raw", "--timeout", "--verbose", "--vpd"],
    "sgpy inq DEV/sg0 --vpd se": ["serial"],
    "sgpy inq DEV/sg0 --vpd=se": ["serial"],
    "sgpy inq DEV/sg0 --timeout ": [],
    "sgpy vpd DEV/sg0 block-l": ["block-limits", "block-limits-extension"],
    "sgpy modes DEV/sg0 ca": ["ca", "caching"],
    "sgpy modes DEV/sg0 --pc ": ["changeable", "current", "default", "saved"],
    "sgpy logs DEV/sg0 te": ["temp", "temperature"],
    "sgpy logs DEV/sg0 temp --j": ["--json"],
    "sgpy bench DEV/sg0 --rw rand": ["randread", "randrw", "randwrite"],
    "sgpy bench DEV/sg0 --qd 8 --rw ": ["randread", "randrw", "randwrite", "read", "rw", "write"],
    "sgpy read DEV/sg0 -o DEV/bl": ["DEV/blocks.bin"],
    "sgpy raw DEV/sg0 12 00 --o": ["--out"],
    "sgpy sense 70 00 ": [],
    "sgpy completion ": ["bash", "zsh"],
    "sgpy discover --targets-only --tim": ["--timeout"],
    "sgpy discover localh": ["localhost"],
    "sgpy nosuchverb ": [],
}


def test_bash_completes_verbs_options_pages_and_devices(fake_devices: Path, tmp_path: Path) -> None:
    dev = str(fake_devices)
    lines = [line.replace("DEV", dev) for line in BASH_CASES]
    got = bash_complete(lines, fake_devices, tmp_path)
    for typed, want in BASH_CASES.items():
        assert got[typed.replace("DEV", dev)] == sorted(w.replace("DEV", dev) for w in want), typed


def test_bash_offers_every_page_name_of_its_kind(fake_devices: Path, tmp_path: Path) -> None:
    lines = ["sgpy vpd x ", "sgpy modes x ", "sgpy logs x ", "sgpy inq x --vpd "]
    got = bash_complete(lines, fake_devices, tmp_path)
    assert got["sgpy vpd x "] == got["sgpy inq x --vpd "] == sorted(PAGE_NAMES["vpd"])
    assert got["sgpy modes x "] == sorted(PAGE_NAMES["mode"])
    assert got["sgpy logs x "] == sorted(PAGE_NAMES["log"])


def test_bash_script_has_no_syntax_error_and_survives_set_u(tmp_path: Path) -> None:
    script = tmp_path / "sgpy.bash"
    script.write_text(completion.script("bash", cli.build_parser(), cli.PAGE_NAMES), encoding="utf-8")
    bash = _shell("bash")
    assert subprocess.run([bash, "-n", str(script)], capture_output=True).returncode == 0
    probe = (f'set -u; source {script}; COMP_LINE="sgpy bogus --x "; COMP_POINT=${{#COMP_LINE}}; '
             'COMP_WORDS=(sgpy bogus --x ""); COMP_CWORD=3; _sgpy; echo "ok ${#COMPREPLY[@]}"; '
             'complete -p sgpy')
    proc = subprocess.run([bash, "--norc", "-c", probe], capture_output=True, text=True, timeout=30)
    assert proc.stdout.splitlines() == ["ok 0", "complete -F _sgpy sgpy"], proc.stderr


# -- zsh ------------------------------------------------------------------------------------------

# Drives an interactive zsh in a pseudo-terminal: TAB after the words, then
# print each candidate compadd receives (markers are split in the source so
# that zsh's echo of the typed lines cannot be taken for them).
_ZSH_DRIVER = r'''
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1= PROMPT= RPROMPT=; unset zle_bracketed_paste"
zpty -w z "fpath=($1 \$fpath); _sgpy_device_glob='$2/sg[0-9]*'; cd $2"
zpty -w z "autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  local -a __hits; builtin compadd -A __hits "$@"
  local h; for h in $__hits; do print -r -- "<CA""ND>$h"; done
}'
zpty -w z "_capdone() { print -r -- '<DO''NE>'; exit }; comppostfuncs=( _capdone )"
zpty -w z "bindkey '^I' complete-word"
zpty -n -w z "$3"$'\t'
local line
while zpty -r z line; do
  [[ $line == *"<DONE>"* ]] && break
  [[ $line == *"<CAND>"* ]] && print -r -- "${${line##*<CAND>}%%$'\r'}"
done
zpty -d z
'''


@pytest.fixture(scope="module")
def zsh_setup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _shell("zsh")
    d = tmp_path_factory.mktemp("zsh")
    (d / "functions").mkdir()
    (d / "functions" / "_sgpy").write_text(completion.script("zsh", cli.build_parser(), cli.PAGE_NAMES), encoding="utf-8")
    (d / "driver.zsh").write_text(_ZSH_DRIVER, encoding="utf-8")
    return d


def zsh_complete(setup: Path, devices: Path, typed: str) -> List[str]:
    proc = subprocess.run([_shell("zsh"), "-f", str(setup / "driver.zsh"), str(setup / "functions"), str(devices),
                           typed], capture_output=True, text=True, timeout=30)
    return sorted({line.strip() for line in proc.stdout.splitlines() if line.strip()})


ZSH_CASES = {
    "sgpy ": VERBS,
    "sgpy lo": ["logs"],
    "sgpy inq ": ["DEV/sg0", "DEV/sg1", "DEV/sg12"],
    "sgpy inq --": ["--help", "--hex", "--json", "--raw", "--timeout", "--verbose", "--vpd"],
    "sgpy inq x --json --": ["--help", "--timeout", "--verbose", "--vpd"],  # --hex and --raw exclude --json
    "sgpy inq x --vpd se": ["serial"],
    "sgpy logs x te": ["temp", "temperature"],
    "sgpy bench x --rw rand": ["randread", "randrw", "randwrite"],
    "sgpy read x -o bl": ["blocks.bin"],
    "sgpy completion ": ["bash", "zsh"],
}


@pytest.mark.parametrize("typed", sorted(ZSH_CASES))
def test_zsh_completes(zsh_setup: Path, fake_devices: Path, typed: str) -> None:
    want = sorted(w.replace("DEV", str(fake_devices)) for w in ZSH_CASES[typed])
    assert zsh_complete(zsh_setup, fake_devices, typed) == want


def test_zsh_script_parses_and_registers_itself_when_sourced(tmp_path: Path) -> None:
    zsh = _shell("zsh")
    script = tmp_path / "_sgpy"
    script.write_text(completion.script("zsh", cli.build_parser(), cli.PAGE_NAMES), encoding="utf-8")
    assert subprocess.run([zsh, "-n", str(script)], capture_output=True).returncode == 0
    probe = f"autoload -Uz compinit; compinit -u -D; source {script}; print -r -- $_comps[sgpy]"
    proc = subprocess.run([zsh, "-f", "-c", probe], capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == "_sgpy", proc.stderr


# -- the verb and the generator ---------------------------------------------------------------------


def test_completion_verb_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == EXIT_OK
    assert capsys.readouterr().out == completion.script("bash", cli.build_parser(), cli.PAGE_NAMES)
    assert main(["completion", "zsh"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("#compdef sgpy\n") and out == completion.script("zsh", cli.build_parser(), cli.PAGE_NAMES)
    assert main(["completion", "fish"]) == EXIT_USAGE
    assert "invalid choice: 'fish'" in capsys.readouterr().err


def test_spec_reads_kinds_from_the_parser() -> None:
    _, verbs = completion.spec(cli.build_parser())
    by_name = {v.name: v for v in verbs}
    inq = {n: o for o in by_name["inq"].options for n in o.names}
    assert inq["--vpd"].values == "page:vpd" and inq["--json"].values == ""
    assert set(inq["--json"].excludes) == {"--hex", "--raw"}
    assert [p.values for p in by_name["inq"].positionals] == ["device"]
    assert [p.values for p in by_name["logs"].positionals] == ["device", "page:log"]
    assert [(p.values, p.repeat) for p in by_name["raw"].positionals] == [("device", False), ("none", True)]
    assert [p.values for p in by_name["discover"].positionals] == ["host"]
    read = {n: o for o in by_name["read"].options for n in o.names}
    assert read["-o"].values == "file" and read["--output"] is read["-o"]
    bench = {n: o for o in by_name["bench"].options for n in o.names}
    assert bench["--rw"].choices == ("randread", "randwrite", "read", "write", "randrw", "rw")


def test_unknown_shell_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="one of bash, zsh"):
        completion.script("fish", cli.build_parser(), cli.PAGE_NAMES)
