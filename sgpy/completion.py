"""Shell completion for the ``sgpy`` command, generated from its argument parser (``sgpy completion bash|zsh``).

:func:`script` reads the parser it is given (:func:`sgpy.cli.build_parser`) — its verbs, each verb's
options and positional arguments, their ``choices`` and the mutually
exclusive groups — and writes a self-contained completion script for bash
or zsh.  Nothing is needed at completion time but the shell: the script
does not call sgpy back, so completing is instant and works in any
environment where the script was loaded.

What an argument completes to is read from the parser:

* a verb, an option: the parser's own (with their help in zsh);
* ``choices``: those values (``--rw``, ``--pc``, ``completion SHELL``);
* a page argument (``--vpd``, ``vpd PAGE``, ``modes PAGE``, ``logs PAGE``):
  the page names of :data:`sgpy.cli.PAGE_NAMES` of its kind;
* ``DEVICE``: the sg nodes (the glob in ``_sgpy_device_glob``,
  ``/dev/sg[0-9]*``), or file names when none matches what is typed;
* ``FILE``: file names; ``HOST[:PORT]``: host names;
* anything else (numbers, hex bytes, sizes): nothing.
"""

from __future__ import annotations

import argparse
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import attr

__all__ = ["SHELLS", "DEVICE_GLOB", "script", "spec"]

#: The shells :func:`script` writes for.
SHELLS = ("bash", "zsh")
#: The device nodes a ``DEVICE`` argument completes to (the scripts' ``_sgpy_device_glob``).
DEVICE_GLOB = "/dev/sg[0-9]*"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Arg:
    """One option or positional argument of a verb, as completion sees it.

    ``names``: the option strings (empty for a positional).  ``values``:
    what its value completes to: ``""`` (the option takes no value),
    ``"none"``, ``"device"``, ``"file"``, ``"host"``, ``"page:KIND"`` or
    ``"choice"`` (then ``choices``).  ``repeat``: a positional that takes
    several words (``nargs`` ``*`` or ``+``); ``optional``: one that may be
    left out.
    """

    names: Tuple[str, ...]
    values: str
    help: str = ""
    metavar: str = ""
    choices: Tuple[str, ...] = ()
    repeat: bool = False
    optional: bool = False
    excludes: Tuple[str, ...] = ()


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Verb:
    """A verb's name, its one-line help, its options and its positional arguments in order."""

    name: str
    help: str
    options: Tuple[Arg, ...]
    positionals: Tuple[Arg, ...]


def _help(action: argparse.Action) -> str:
    """The first clause of an argument's help, on one line, for zsh's descriptions."""
    text = " ".join(str(action.help or "").split())
    text = text.replace("%%", "%")
    cut = re.split(r"(?<=[^.])[.;] |: (?=[a-z0-9]+=)", text, maxsplit=1)[0]
    return cut if len(cut) <= 70 else cut[:67].rstrip() + "..."


def _kind(action: argparse.Action) -> str:
    """What an argument's value completes to (see :class:`Arg`)."""
    if action.nargs == 0:
        return ""
    if action.choices:
        return "choice"
    type_name = getattr(action.type, "__name__", "")
    if type_name.endswith(" page"):  # sgpy.cli._page_type names its parsers "vpd page", "mode page"...
        return "page:" + type_name.split()[0]
    metavar = str(action.metavar or action.dest).upper()
    if metavar == "DEVICE":
        return "device"
    if metavar == "FILE":
        return "file"
    if metavar.startswith("HOST"):
        return "host"
    return "none"


def _arg(action: argparse.Action, excludes: Sequence[str] = ()) -> Arg:
    return Arg(names=tuple(action.option_strings), values=_kind(action), help=_help(action),
               metavar=str(action.metavar or action.dest.upper()),
               choices=tuple(str(c) for c in action.choices or ()),
               repeat=action.nargs in ("*", "+", argparse.REMAINDER),
               optional=action.nargs in ("?", "*"), excludes=tuple(excludes))


def _arguments(parser: argparse.ArgumentParser) -> Tuple[Tuple[Arg, ...], Tuple[Arg, ...]]:
    excludes: Dict[int, List[str]] = {}
    for group in parser._mutually_exclusive_groups:
        for action in group._group_actions:
            others = [s for a in group._group_actions if a is not action for s in a.option_strings]
            excludes.setdefault(id(action), []).extend(others)
    options, positionals = [], []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            options.append(_arg(action, excludes.get(id(action), ())))
        else:
            positionals.append(_arg(action))
    return tuple(options), tuple(positionals)


def spec(parser: argparse.ArgumentParser) -> Tuple[Tuple[Arg, ...], Tuple[Verb, ...]]:
    """``(the program's own options, its verbs)`` read from ``parser`` (:func:`sgpy.cli.build_parser`'s)."""
    verbs: List[Verb] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: str(a.help or "") for a in action._choices_actions}
            for name, sub in action.choices.items():
                options, positionals = _arguments(sub)
                verbs.append(Verb(name, " ".join(helps.get(name, "").split()), options, positionals))
    options, _ = _arguments(parser)
    return options, tuple(verbs)


def _page_names(page_names: Mapping[str, Iterable[str]]) -> Dict[str, Tuple[str, ...]]:
    return {kind: tuple(names) for kind, names in page_names.items()}


# -- bash -----------------------------------------------------------------------------------------

_BASH_BODY = r'''
_sgpy_values() {
    # _sgpy_values KIND PREFIX: fill COMPREPLY with what a value of KIND may be.
    local kind=$1 cur=$2
    case $kind in
        device)
            local devs
            devs=$(compgen -G "$_sgpy_device_glob" 2>/dev/null)
            COMPREPLY=($(compgen -W "$devs" -- "$cur"))
            if ((${#COMPREPLY[@]} == 0)); then
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur")) ;;
        host)
            COMPREPLY=($(compgen -A hostname -- "$cur")) ;;
        page:*)
            local var=_sgpy_pages_${kind#page:}
            COMPREPLY=($(compgen -W "${!var}" -- "$cur")) ;;
        choice:*)
            COMPREPLY=($(compgen -W "${kind#choice:}" -- "$cur")) ;;
        *)
            COMPREPLY=() ;;
    esac
}

_sgpy() {
    COMPREPLY=()
    # The words as typed, split at blanks only (COMP_WORDS is also split at
    # COMP_WORDBREAKS: "--vpd=sn", "0:0:0:0" and "iscsi://..." would be
    # several words there).
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words
    read -ra words <<<"$line"
    [[ -z $line || $line == *[[:blank:]] ]] && words+=("")
    local cur=${words[${#words[@]}-1]}
    local verb="" prev="" w i npos=0 kind="" dashdash=""
    for ((i = 1; i < ${#words[@]} - 1; i++)); do
        w=${words[i]}
        if [[ -n $kind ]]; then kind=""; continue; fi    # the value of the option before
        if [[ -z $verb ]]; then
            case $w in -*) ;; *) verb=$w ;; esac
            continue
        fi
        if [[ -z $dashdash && $w == -- ]]; then dashdash=1; continue; fi
        if [[ -z $dashdash && $w == -?* && $w != *=* ]]; then
            kind=${_sgpy_optvalue["$verb $w"]-}
            continue
        fi
        [[ -z $dashdash && $w == -?*=* ]] && continue
        ((npos++))
    done
    if [[ -z $verb ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$_sgpy_global_options" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_sgpy_verbs" -- "$cur"))
        fi
        return 0
    fi
    [[ -n ${_sgpy_options[$verb]+set} ]] || return 0
    if [[ -n $kind ]]; then                      # "--vpd PAGE", "-o FILE"
        _sgpy_values "$kind" "$cur"
        return 0
    fi
    if [[ -z $dashdash && $cur == --*=* ]]; then  # "--vpd=PAGE"
        _sgpy_values "${_sgpy_optvalue["$verb ${cur%%=*}"]-}" "${cur#*=}"
        return 0
    fi
    if [[ -z $dashdash && $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${_sgpy_options[$verb]}" -- "$cur"))
        return 0
    fi
    local -a pos
    read -ra pos <<<"${_sgpy_positionals[$verb]-}"
    if ((${#pos[@]} == 0)); then
        return 0
    fi
    local p=${pos[${#pos[@]}-1]}
    if ((npos < ${#pos[@]})); then
        p=${pos[npos]}
    elif [[ $p != *+ ]]; then
        p=""
    fi
    if [[ -z $p ]]; then                         # every positional given: the options are left
        COMPREPLY=($(compgen -W "${_sgpy_options[$verb]}" -- "$cur"))
        return 0
    fi
    p=${p%+}
    [[ $p == choice:* ]] && p=${p//,/ }         # one word per positional there: choices joined by commas
    _sgpy_values "$p" "$cur"
    return 0
}

complete -F _sgpy sgpy
'''


def _bash_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _bash_kind(arg: Arg) -> str:
    if arg.values == "choice":
        return "choice:" + " ".join(arg.choices)
    return arg.values


def _bash(options: Sequence[Arg], verbs: Sequence[Verb], pages: Dict[str, Tuple[str, ...]]) -> str:
    lines = [
        "# bash completion for sgpy: source this file, or put it in",
        "# ~/.local/share/bash-completion/completions/sgpy.  Generated from sgpy's",
        "# argument parser by 'sgpy completion bash'; regenerate it after an upgrade.",
        "",
        "# What a DEVICE completes to: set _sgpy_device_glob before loading this to change it.",
        f"_sgpy_device_glob=${{_sgpy_device_glob:-{DEVICE_GLOB}}}",
        "_sgpy_verbs=" + _bash_quote(" ".join(v.name for v in verbs)),
        "_sgpy_global_options=" + _bash_quote(" ".join(n for o in options for n in o.names)),
    ]
    for kind, names in sorted(pages.items()):
        lines.append(f"_sgpy_pages_{kind}=" + _bash_quote(" ".join(names)))
    # -g: bash-completion's loader sources this file inside a function.
    lines.append("declare -gA _sgpy_options=(")
    for v in verbs:
        lines.append(f"    [{v.name}]=" + _bash_quote(" ".join(n for o in v.options for n in o.names)))
    lines.append(")")
    lines.append("declare -gA _sgpy_optvalue=(")
    for v in verbs:
        for o in v.options:
            if o.values:
                for n in o.names:
                    lines.append(f"    [{_bash_quote(v.name + ' ' + n)}]=" + _bash_quote(_bash_kind(o)))
    lines.append(")")
    lines.append("declare -gA _sgpy_positionals=(")
    for v in verbs:
        words = []
        for p in v.positionals:
            kind = _bash_kind(p).replace(" ", ",") if p.values == "choice" else p.values
            words.append(kind + ("+" if p.repeat else ""))
        lines.append(f"    [{v.name}]=" + _bash_quote(" ".join(words)))
    lines.append(")")
    return "\n".join(lines) + "\n" + _BASH_BODY


# -- zsh ------------------------------------------------------------------------------------------


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_text(text: str) -> str:
    """Text inside an _arguments spec: brackets and colons escaped."""
    return re.sub(r"([\[\]:\\])", r"\\\1", text)


def _zsh_action(arg: Arg, pages: Dict[str, Tuple[str, ...]]) -> str:
    if arg.values == "choice":
        return "(" + " ".join(_zsh_text(c) for c in arg.choices) + ")"
    if arg.values.startswith("page:"):
        return "(" + " ".join(pages[arg.values[5:]]) + ")"
    return {"device": "_sgpy_devices", "file": "_files", "host": "_hosts"}.get(arg.values, " ")


def _zsh_option(arg: Arg, pages: Dict[str, Tuple[str, ...]]) -> List[str]:
    group = sorted(set(arg.names) | set(arg.excludes))
    exclusion = "(" + " ".join(group) + ")" if len(group) > 1 else ""
    if "-h" in arg.names or "--version" in arg.names:
        exclusion = "(- *)"
    out = []
    for name in arg.names:
        suffix = ""
        if arg.values:
            suffix = "=" if name.startswith("--") else "+"
        spec = f"{exclusion}{name}{suffix}[{_zsh_text(arg.help)}]"
        if arg.values:
            spec += f":{_zsh_text(arg.metavar)}:{_zsh_action(arg, pages)}"
        out.append(_zsh_quote(spec))
    return out


def _zsh_positional(arg: Arg, pages: Dict[str, Tuple[str, ...]]) -> str:
    lead = "*:" if arg.repeat else ("::" if arg.optional else ":")
    return _zsh_quote(f"{lead}{_zsh_text(arg.metavar)}:{_zsh_action(arg, pages)}")


def _zsh(options: Sequence[Arg], verbs: Sequence[Verb], pages: Dict[str, Tuple[str, ...]]) -> str:
    out = [
        "#compdef sgpy",
        "# zsh completion for sgpy: save it as _sgpy in a directory of $fpath (then compinit),",
        "# or source it after compinit.  Generated from sgpy's argument parser by",
        "# 'sgpy completion zsh'; regenerate it after an upgrade.",
        "",
        "# What a DEVICE completes to: set _sgpy_device_glob before the first completion to change it.",
        f"typeset -g _sgpy_device_glob=${{_sgpy_device_glob:-{DEVICE_GLOB}}}",
        "",
        "_sgpy_devices() {",
        "  local -a devs",
        "  devs=( ${~_sgpy_device_glob}(N) )",
        "  if (( ${#devs} )); then",
        "    _wanted devices expl 'sg device' compadd -a devs",
        "  else",
        "    _files",
        "  fi",
        "}",
        "",
        "_sgpy_verbs() {",
        "  local -a verbs",
        "  verbs=(",
    ]
    for v in verbs:
        out.append("    " + _zsh_quote(f"{v.name}:{v.help.replace(':', ' -')}"))
    out += [
        "  )",
        "  _describe -t verbs 'sgpy verb' verbs",
        "}",
        "",
        "_sgpy() {",
        "  local curcontext=$curcontext state state_descr line ret=1",
        "  typeset -A opt_args",
        "  _arguments -C \\",
    ]
    for o in options:
        for spec_ in _zsh_option(o, pages):
            out.append(f"    {spec_} \\")
    out += [
        "    ': :_sgpy_verbs' \\",
        "    '*:: :->verb' && ret=0",
        "  case $state in",
        "    (verb)",
        "      curcontext=${curcontext%:*:*}:sgpy-$words[1]:",
        "      case $words[1] in",
    ]
    for v in verbs:
        specs = [s for o in v.options for s in _zsh_option(o, pages)]
        specs += [_zsh_positional(p, pages) for p in v.positionals]
        out.append(f"        ({v.name})")
        out.append("          _arguments -s -S \\")
        for s in specs:
            out.append(f"            {s} \\")
        out.append("            && ret=0 ;;")
    out += [
        "      esac ;;",
        "  esac",
        "  return ret",
        "}",
        "",
        "# As an autoloaded completion function (#compdef) it completes at once; sourced, it registers itself.",
        'if [[ $funcstack[1] == _sgpy ]]; then',
        '  _sgpy "$@"',
        "else",
        "  compdef _sgpy sgpy",
        "fi",
    ]
    return "\n".join(out) + "\n"


def script(shell: str, parser: argparse.ArgumentParser, page_names: Mapping[str, Iterable[str]]) -> str:
    """The completion script for ``shell`` (``"bash"`` or ``"zsh"``), from ``parser`` and the page names
    of each kind (``sgpy.cli.build_parser()`` and ``sgpy.cli.PAGE_NAMES``: given by the caller, so this
    module does not import the command line it completes)."""
    if shell not in SHELLS:
        raise ValueError(f"no completion for shell {shell!r}: one of {', '.join(SHELLS)}")
    options, verbs = spec(parser)
    pages = _page_names(page_names)
    return _bash(options, verbs, pages) if shell == "bash" else _zsh(options, verbs, pages)
