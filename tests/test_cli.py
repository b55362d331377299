"""The hashgym command: bank subcommands and the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from hashgym.bank import FeatureBank
from hashgym.cli import main


def test_bank_info_builtin(capsys):
    assert main(["bank", "info"]) == 0
    out = capsys.readouterr().out
    assert "images    9,000 (query 2,000 / database 7,000 / train 7,000)" in out
    assert "features  128-d float16" in out
    assert "levels    0 coarse: 20 classes; 1 fine: 100 classes" in out


def test_bank_info_json_with_protocol(capsys):
    assert main(["bank", "info", "cifar100-mini", "--protocol", "csq", "--seed", "2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    # 90 images per class: 2 queries (from the query split) and 9 training images per class
    assert (info["query"], info["train"], info["database"]) == (200, 900, 8800)
    assert info["meta"]["protocol"]["seed"] == 2


@pytest.mark.slow
def test_bank_info_shared(shared_bank_path, capsys):
    assert main(["bank", "info", str(shared_bank_path)]) == 0
    out = capsys.readouterr().out
    assert "images    60,000 (query 10,000 / database 50,000 / train 50,000)" in out
    assert "features  512-d float16 (61.4 MB)" in out


def test_bank_info_shortens_long_meta_lists(tmp_path, hier_bank, capsys):
    path = hier_bank.replace(meta={"rows": list(range(100)), "few": [1, 2]}).save(tmp_path / "b.npz")
    assert main(["bank", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"rows": "<100 items>"' in out and '"few": [1, 2]' in out


def test_bank_list(capsys):
    assert main(["bank", "list"]) == 0
    assert "cifar100-mini-csq" in capsys.readouterr().out.split()


def test_bank_split_writes_resplit_bank(tmp_path, capsys):
    out = tmp_path / "split.npz"
    assert main(["bank", "split", "cifar100-mini", "--protocol", "trees-people", "--out", str(out)]) == 0
    bank = FeatureBank.load(out)
    assert bank.n == 900 and bank.meta["protocol"]["name"] == "trees-people"
    assert f"wrote {out}" in capsys.readouterr().out


def test_errors_exit_2_with_message(tmp_path, capsys):
    assert main(["bank", "info", "nope"]) == 2
    assert "hashgym bank info: error: unknown preset 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["bank", "info", str(bad)]) == 2
    assert "truncated or corrupted" in capsys.readouterr().err


def test_unknown_protocol_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bank", "info", "--protocol", "nope"])
    assert exc.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = shutil.which("hashgym")
    assert exe, "the hashgym console script is not on PATH; install the package first"
    proc = subprocess.run([exe, "bank", "info"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "images    9,000" in proc.stdout


@pytest.mark.parametrize("command", [[], ["bank"], ["bank", "info"], ["bank", "split"],
                                     ["features"], ["bench"], ["train"], ["encode"], ["eval"],
                                     ["index"], ["index", "build"], ["index", "search"],
                                     ["search"], ["show"]])
def test_help_is_plain_text(command, capsys):
    """Every --help reads as plain text: no reStructuredText roles or literals."""
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hashgym")
    for markup in ("``", ":func:", ":class:", ":mod:", ":data:"):
        assert markup not in out
