"""Run the ``sgpy`` command line in-process, as the CLI tests do: ``run`` gives (exit status, stdout,
stderr); ``run_json`` adds ``--json``, requires success and gives the parsed answer."""

import json

from sgpy.cli import EXIT_OK, main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == EXIT_OK, err
    return json.loads(out)
