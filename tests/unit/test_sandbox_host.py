"""How the sandbox decides to run on a host: pure logic over recorded probes.

The recordings in data/sandbox/ are real probes (``sgpy.sandbox.probe_uml``)
of an AMD EPYC host (XCR0 0x207, XSAVE area 2440 bytes, host kernel 6.18,
UML 6.1.176):

* ``amd-uml-plain``: UML as it is;
* ``amd-fxsave-helper``: with the earlier helper that forced UML onto the
  FXSAVE-only path (YMM upper halves lost at every guest page fault);
* ``short-buffer-plain``: UML's XSTATE buffer cut to 832 bytes, shorter than
  the host's, and not padded: the failure UML shows on AMX hosts, whose
  11008-byte XSAVE area is larger than UML's 2696 bytes;
* ``short-buffer-helper``: the same with umlfix.c padding the buffer.
"""

import json
import os

import attrs
import pytest

from sgpy.sandbox import host

DATA = os.path.join(os.path.dirname(__file__), "data", "sandbox")


def recorded(name, path=None):
    with open(os.path.join(DATA, f"{name}.json"), encoding="utf-8") as f:
        probe = host.Probe.from_json(json.load(f)["probe"])
    return probe if path is None else attrs.evolve(probe, path=path)


def test_recordings_say_what_happened():
    assert recorded("amd-uml-plain").ok
    assert recorded("short-buffer-helper").ok
    old = recorded("amd-fxsave-helper")
    assert not old.ok
    assert "ymm0-15 across a page fault BAD" in old.why()
    amx = recorded("short-buffer-plain")
    assert not amx.ok
    assert "ptrace set fp regs failed, errno = 14" in amx.why()


def test_a_host_where_uml_works_as_it_is_probes_once_and_loads_no_helper():
    probes = [recorded("amd-uml-plain", host.UML)]
    assert host.next_probe(probes) is None
    d = host.decide(probes)
    assert (d.backend, d.helper, d.path) == ("uml", False, "uml")
    assert "as it is" in d.reason


def test_a_host_whose_xsave_area_is_larger_than_umls_gets_the_helper():
    first = [recorded("short-buffer-plain", host.UML)]
    assert host.next_probe(first) == host.UML_HELPER
    probes = first + [recorded("short-buffer-helper", host.UML_HELPER)]
    assert host.next_probe(probes) is None
    d = host.decide(probes)
    assert (d.backend, d.helper, d.path) == ("uml", True, "uml+umlfix")
    assert "ptrace set fp regs failed" in d.reason


def test_a_helper_that_corrupts_registers_is_never_chosen():
    probes = [recorded("short-buffer-plain", host.UML), recorded("amd-fxsave-helper", host.UML_HELPER)]
    assert host.next_probe(probes) is None
    d = host.decide(probes)
    assert d.backend == "qemu"
    assert "ymm0-15 across a page fault" in d.reason and "QEMU" in d.reason


def test_nothing_works_names_every_reason():
    probes = [recorded("short-buffer-plain", host.UML), recorded("amd-fxsave-helper", host.UML_HELPER)]
    d = host.decide(probes, qemu_missing="the QEMU sandbox needs qemu-system-x86_64")
    assert d.backend == "none"
    assert "ptrace set fp regs failed" in d.reason and "qemu-system-x86_64" in d.reason


def test_a_python_that_computes_differently_fails_the_probe():
    good = recorded("amd-uml-plain")
    wrong = good.output.replace(good.expected_smoke, good.expected_smoke[:-1] + "0")
    p = attrs.evolve(good, output=wrong)
    assert not p.ok
    assert "guest Python computed" in p.why()


def test_a_crashed_guest_program_is_named():
    good = recorded("amd-uml-plain")
    p = attrs.evolve(good, status=139, output="regcheck result ok\nSegmentation fault\n",
                     console="python[747]: segfault at 18 ip 00000000401317fa sp 0000007fbfc75e90 error 4\n")
    assert "segfault at 18" in p.why()


def test_the_smoke_line_is_what_the_guest_prints_on_a_good_host():
    assert host.smoke_expected() == recorded("amd-uml-plain").expected_smoke


def facts(**changes):
    base = host.HostFacts(kernel="6.18.44 #1", uml="/usr/bin/linux.uml:1:2", cpu="AMD EPYC",
                          cpu_flags="ecfe", tools="d8c0")
    return attrs.evolve(base, **changes)


@pytest.mark.parametrize("field", ["kernel", "uml", "cpu", "cpu_flags", "tools"])
def test_any_changed_fact_probes_again(tmp_path, field):
    d = host.decide([recorded("amd-uml-plain", host.UML)])
    host.save_decision(str(tmp_path), facts(), d)
    assert host.load_decision(str(tmp_path), facts()) == d
    assert host.load_decision(str(tmp_path), facts(**{field: "other"})) is None


def test_an_unreadable_cache_probes_again(tmp_path):
    d = host.decide([recorded("amd-uml-plain", host.UML)])
    path = host.save_decision(str(tmp_path), facts(), d)
    with open(path, "w") as f:
        f.write("{not json")
    assert host.load_decision(str(tmp_path), facts()) is None
    os.remove(path)
    assert host.load_decision(str(tmp_path), facts()) is None


def test_facts_of_this_host_read_cleanly(tmp_path):
    src = tmp_path / "tool.c"
    src.write_text("int x;")
    f = host.HostFacts.read("/nonexistent/linux.uml", [str(src)])
    assert f.uml.endswith(":missing")
    assert f.kernel == f"{os.uname().release} {os.uname().version}"
    src.write_text("int y;")
    assert host.HostFacts.read("/nonexistent/linux.uml", [str(src)]).tools != f.tools
