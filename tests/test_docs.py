"""The user docs stay true to the code.

* docs/cli.md and docs/config.md are exactly what scripts/gen_docs.py generates now;
* every drivestage / trainer command and flag shown in the README and docs/ exists, and every
  ``--set key=value`` names a real config key;
* every environment variable and exit code the README names exists in the code;
* every message the troubleshooting page quotes is made to happen by a test in
  tests/test_messages_*.py (see tests/_messages.py), so the page quotes what users see;
* the worked pytest example on the emulator page runs and passes.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
EMULATOR_MD = REPO / "docs" / "emulator.md"
TROUBLE_MD = REPO / "docs" / "troubleshooting.md"
#: The hand-written docs whose commands, variables and messages are checked.
HAND_WRITTEN = [README, EMULATOR_MD, TROUBLE_MD, REPO / "docs" / "performance.md",
                REPO / "docs" / "training.md", REPO / "docs" / "guarantees.md"]


def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_docs():
    return _gen_docs()


def _source_text() -> str:
    """All Python source of both packages, concatenated."""
    parts = []
    for pkg in ("drivestage", "trainer"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


# --------------------------------------------------------------------------- generated files

@pytest.mark.parametrize("name", ["cli.md", "config.md"])
def test_generated_reference_is_current(gen_docs, name):
    path = REPO / "docs" / name
    expected = {p.name: text for p, text in gen_docs.outputs().items()}[name]
    assert path.exists(), f"docs/{name} is missing: run python scripts/gen_docs.py"
    if path.read_text(encoding="utf-8") != expected:
        pytest.fail(f"docs/{name} is stale: run python scripts/gen_docs.py", pytrace=False)


def test_generated_docs_do_not_depend_on_the_terminal_or_machine(gen_docs, monkeypatch):
    before = gen_docs.render_cli()
    monkeypatch.setenv("COLUMNS", "37")
    monkeypatch.setenv("LINES", "10")
    assert gen_docs.render_cli() == before
    for text in (before, gen_docs.render_config()):
        assert str(REPO) not in text
        assert os.path.expanduser("~") not in text
        assert not any(line != line.rstrip() for line in text.splitlines())


def test_cli_md_documents_every_command(gen_docs):
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    paths = gen_docs.command_paths()
    assert {"drivestage pull", "drivestage push", "drivestage mirror", "drivestage prune",
            "drivestage ls", "drivestage quota", "drivestage auth login", "drivestage emulator",
            "trainer train", "trainer eval", "trainer predict", "trainer export-onnx",
            "trainer prepare-voc", "trainer synth-data"} <= set(paths)
    for path in paths:
        assert f"## `{path}`" in text


def test_config_md_lists_every_key_with_its_description(gen_docs):
    from trainer.config import describe_keys

    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    for key, desc in describe_keys().items():
        assert f"| `{key}` |" in text, key
        assert gen_docs._cell(desc) in text, key


def test_every_config_key_is_read_by_the_trainer():
    """A key docs/config.md documents but nothing reads is a setting that silently does
    nothing (``train.log_period`` after the engine's split): each key's field is read
    somewhere in trainer/ outside config.py, where the keys are only declared and checked."""
    import ast

    from trainer.config import valid_keys

    read = set()
    for path in sorted((REPO / "trainer").rglob("*.py")):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):       # cfg.train.log_period, not a docstring
                read.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                read.add(node.value)                  # getattr(d, key) for key in ("train", "val")
    unread = [k for k in valid_keys() if k.split(".", 1)[1] not in read]
    assert not unread, f"config keys nothing in trainer/ reads: {unread}"


def test_voc_yaml_lists_every_key_as_the_docs_say():
    """README and docs/config.md: `configs/voc.yaml` lists every key with a comment (the
    comments are checked in test_config.py); a key added to the schema is added there too."""
    import yaml

    from trainer.config import valid_keys

    config = yaml.safe_load((REPO / "configs" / "voc.yaml").read_text(encoding="utf-8"))
    listed = {f"{section}.{key}" for section, keys in config.items() for key in keys}
    assert sorted(set(valid_keys()) - listed) == []


def test_yaml_examples_in_the_docs_are_valid_configs(tmp_path):
    from trainer.config import load_config

    blocks = re.findall(r"^```yaml\n(.*?)^```", (REPO / "docs" / "config.md").read_text(), re.S | re.M)
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.yaml"
        path.write_text(block)
        load_config(str(path))  # raises ConfigError on an unknown key or a bad value


def test_config_error_quoted_in_config_md_is_what_trainer_prints(tmp_path):
    from click.testing import CliRunner
    from trainer.cli import cli

    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epochs: 1\n")
    res = CliRunner().invoke(cli, ["train", "-c", str(cfg), "--set", "train.epoch=3"])
    assert res.exit_code == 2
    quoted = re.search(r"`(Error: unknown config key .*?)`", (REPO / "docs" / "config.md").read_text())
    assert quoted.group(1) in res.output


def test_gen_docs_check_mode_reports_a_stale_file(gen_docs, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text("old\n")
    monkeypatch.setattr(gen_docs, "CLI_MD", stale)
    monkeypatch.setattr(gen_docs, "CONFIG_MD", tmp_path / "config.md")
    assert gen_docs.main(["--check"]) == 1
    assert stale.read_text() == "old\n"          # --check writes nothing
    assert gen_docs.main([]) == 0
    assert gen_docs.main(["--check"]) == 0
    assert stale.read_text() == gen_docs.render_cli()


# --------------------------------------------------------------------------- commands and flags

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`((?:drivestage|trainer) [^`]+)`")


def _command_lines(text: str) -> list[str]:
    """Shell command lines (code blocks, notebook ``!`` lines, inline code) in a markdown text."""
    lines = []
    for block in _FENCE.findall(text):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.strip().lstrip("!").strip()
            if line.startswith("$ "):
                line = line[2:]
            if re.match(r"^(drivestage|trainer|torchrun|python -m trainer)( |$)", line):
                lines.append(line)
    outside = _FENCE.sub("", text)
    lines.extend(m.group(1) for m in _INLINE.finditer(outside))
    return lines


def _check_command(line: str, paths: dict, keys: set) -> list[str]:
    """Problems with one command line: an unknown subcommand, flag or --set key."""
    tokens = shlex.split(line, comments=True)
    if tokens[0] in ("torchrun", "python"):
        tokens = tokens[tokens.index("-m") + 1:]
    if not tokens:
        return []
    prog = tokens[0]
    cmd, path = paths[prog], prog
    problems = []
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if tok == "..." or tok.startswith("<"):  # a placeholder: "drivestage -v ..."
            pass
        elif isinstance(cmd, click.Group) and not tok.startswith("-"):
            if f"{path} {tok}" not in paths:
                problems.append(f"{line!r}: no command '{path} {tok}'")
                return problems
            path = f"{path} {tok}"
            cmd = paths[path]
        elif tok.startswith("-") and tok != "-":
            flag = tok.split("=", 1)[0]
            opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
            if flag not in opts and not (re.fullmatch(r"-[a-zA-Z]+", flag)
                                         and all(f"-{c}" in opts for c in flag[1:])):
                problems.append(f"{line!r}: '{path}' has no option {flag}")
            if flag == "--set" and i + 1 < len(tokens):
                key = tokens[i + 1].split("=", 1)[0]
                if key not in keys:
                    problems.append(f"{line!r}: --set {key}: not a config key")
        i += 1
    return problems


def test_every_command_and_flag_in_the_docs_exists(gen_docs):
    from trainer.config import valid_keys

    paths = gen_docs.command_paths()
    keys = set(valid_keys())
    problems, seen = [], 0
    for doc in [*HAND_WRITTEN, REPO / "docs" / "cli.md"]:  # cli.md: the help texts' examples
        for line in _command_lines(doc.read_text(encoding="utf-8")):
            seen += 1
            problems += [f"{doc.name}: {p}" for p in _check_command(line, paths, keys)]
    assert seen > 30  # the extraction finds the commands at all
    assert not problems, "\n".join(problems)


#: Flags of other programs the docs show (curl, torchrun, bench/epoch.py).
_FOREIGN_FLAGS = {"--data-binary", "--nproc"}


def _bench_flags() -> set[str]:
    """The options of the bench/ scripts (the README's performance rows name them) and of
    scripts/ (docs/training.md names drive_probe.py's)."""
    flags: set[str] = set()
    for script in (*(REPO / "bench").glob("*.py"), *(REPO / "scripts").glob("*.py")):
        flags |= set(re.findall(r"""add_argument\(\s*["'](--[a-z0-9-]+)""",
                                script.read_text(encoding="utf-8")))
    return flags


def test_every_flag_mentioned_in_prose_belongs_to_some_command(gen_docs):
    """Flags named outside a full command line (``--resume none``) must exist somewhere."""
    known = {o for cmd in gen_docs.command_paths().values() for p in cmd.params
             for o in (*p.opts, *p.secondary_opts)} | {"--help"} | _FOREIGN_FLAGS | _bench_flags()
    unknown = set()
    for doc in HAND_WRITTEN:
        text = doc.read_text(encoding="utf-8")
        unknown |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text)) - known
    assert not unknown, f"flags in the docs that no command has: {sorted(unknown)}"


def test_the_command_check_catches_mistakes(gen_docs):
    paths = gen_docs.command_paths()
    keys = {"train.epochs"}
    assert _check_command("drivestage pull drive:a ./d --extract -j 4", paths, keys) == []
    assert _check_command("drivestage pul drive:a ./d", paths, keys)
    assert _check_command("drivestage pull drive:a ./d --extrct", paths, keys)
    assert _check_command("trainer train -c x.yaml --set train.epoch=3", paths, keys)
    assert _check_command("drivestage -v auth login --client-secrets c.json", paths, keys) == []


def test_readme_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    block = _FENCE.search(text).group(1)
    assert block.splitlines()[:2] == [
        "make demo   # the whole recipe on the built-in Drive emulator and synthetic data",
        "make test   # install everything into .venv and run the tests"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_the_docs_resolve():
    broken = []
    for doc in [*HAND_WRITTEN, REPO / "docs" / "cli.md", REPO / "docs" / "config.md"]:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", _FENCE.sub("", text)):
            if target.startswith(("http://", "https://")):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (doc.parent / file_part) if file_part else doc
            if not linked.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
                continue
            if anchor and linked.suffix == ".md":
                body = linked.read_text(encoding="utf-8")
                anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", _FENCE.sub("", body), re.M)}
                anchors |= set(re.findall(r'<a id="([^"]+)"></a>', body))
                if anchor not in anchors:
                    broken.append(f"{doc.name}: {target} (no such anchor)")
    assert not broken, "\n".join(broken)


def test_the_shipped_configs_name_only_documents_that_ship():
    """A config's comments are documentation too: `configs/demo.yaml` sent users to a
    DESIGN.md that is not in the repository."""
    missing = []
    for config in sorted((REPO / "configs").glob("*.yaml")):
        for name in re.findall(r"[\w./-]+\.md\b", config.read_text(encoding="utf-8")):
            if not any((base / name).exists() for base in (REPO, REPO / "docs")):
                missing.append(f"{config.name}: {name}")
    assert not missing, missing


def test_what_replaces_annotation_mode_2_keeps_the_datasets_splits(synth_voc, tmp_path,
                                                                     monkeypatch):
    """The recipe ran voc_annotation.py with annotation_mode = 2: lines from the dataset's own
    splits. The README's replacement said plain `trainer prepare-voc`, whose default (mode 0)
    writes new random splits over ImageSets/Main, the VOC2007 test set included."""
    import shutil

    from click.testing import CliRunner

    from trainer.cli import cli as trainer_cli

    row = next(line for line in README.read_text(encoding="utf-8").splitlines()
               if "annotation_mode = 2" in line)
    commands = re.findall(r"`(trainer prepare-voc [^`]*)`", row)
    assert commands, row
    monkeypatch.chdir(tmp_path)
    shutil.copytree(synth_voc.voc_root, tmp_path / "data" / "VOCdevkit")
    sets = tmp_path / "data" / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    before = {p.name: p.read_bytes() for p in sets.iterdir()}
    for command in commands:
        result = CliRunner().invoke(trainer_cli, shlex.split(command)[1:])
        assert result.exit_code == 0, (command, result.output)
        assert {p.name: p.read_bytes() for p in sets.iterdir()} == before, command
        assert (tmp_path / "2007_train.txt").stat().st_size > 0


# --------------------------------------------------------------------------- env vars, exit codes

def test_every_environment_variable_in_the_docs_exists_in_the_code():
    # (the test suite's own settings are read by its helpers)
    source = _source_text() + (REPO / "tests" / "_sweep.py").read_text(encoding="utf-8")
    named = set()
    for doc in HAND_WRITTEN:
        named |= set(re.findall(r"\b(?:DRIVESTAGE|TRAINER)_[A-Z0-9_]*[A-Z0-9]\b",
                                doc.read_text(encoding="utf-8")))
    assert {"DRIVESTAGE_CREDENTIALS", "DRIVESTAGE_API_ROOT", "TRAINER_DEBUG"} <= named
    missing = sorted(v for v in named if f'"{v}"' not in source and f"'{v}'" not in source
                     and v not in source)
    assert not missing, f"named in the docs but not read by the code: {missing}"


_VARIABLE = re.compile(r"\b(?:DRIVESTAGE|TRAINER)_[A-Z0-9_]*[A-Z0-9]\b")


def test_every_environment_variable_the_code_reads_is_in_the_readme_table():
    """The other direction: a variable read in a string literal (``"DRIVESTAGE_…"``) is one a
    user can set, so the README's table says what it does."""
    table = README.read_text(encoding="utf-8").split("| variable | effect |", 1)[1].split("\n\n", 1)[0]
    documented = set(_VARIABLE.findall(table))
    read = set()
    for pkg in ("drivestage", "trainer"):
        for path in (REPO / pkg).rglob("*.py"):
            read |= set(re.findall(r"""["']((?:DRIVESTAGE|TRAINER)_[A-Z0-9_]*[A-Z0-9])["']""",
                                   path.read_text(encoding="utf-8")))
    assert {"DRIVESTAGE_API_ROOT", "DRIVESTAGE_CHECKSUM", "TRAINER_DEBUG"} <= read
    missing = sorted(read - documented)
    assert not missing, f"read by the code but not in the README's variable table: {missing}"


def _code_exit_codes() -> set[int]:
    import drivestage.errors as de
    import trainer.errors as te

    codes = {0, 2}  # success; click's usage errors
    for module in (de, te):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, (de.DriveStageError, te.TrainerError)):
                codes.add(obj.exit_code)
    for cli in sorted(REPO.glob("drivestage/cli/*.py")) + sorted(REPO.glob("trainer/cli/*.py")):
        codes |= {int(n) for n in re.findall(r"ctx\.exit\((\d+)\)", cli.read_text())}
    import trainer.stopping as ts

    return codes | set(ts.EXIT_CODES.values())  # a run stopped by a signal


def test_readme_exit_codes_are_the_codes_the_tools_use():
    text = README.read_text(encoding="utf-8")
    table = text.split("| exit code | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = {int(n) for n in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == _code_exit_codes()


def test_exit_codes_in_the_help_texts_are_codes_the_tools_use():
    """docs/cli.md (the commands' --help and its header) names only exit codes that exist."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    paragraphs = re.findall(r"Exit codes(.*?)(?:\n\s*\n|```)", text, re.S)
    assert len(paragraphs) >= 5
    named = {int(n) for p in paragraphs for n in re.findall(r"(?<![\w.-])(\d{1,3})(?=\s)", p)}
    assert {0, 1, 2, 129, 130, 143} <= named
    assert named <= _code_exit_codes(), sorted(named - _code_exit_codes())


# --------------------------------------------------------------------------- troubleshooting

def _quoted_messages() -> list[str]:
    from _messages import quoted_messages
    return quoted_messages()


def _triggers() -> dict[str, list[str]]:
    """Each quoted message's tests, as the ``test_messages_*`` modules declare them."""
    import importlib

    from _messages import TRIGGERS

    for path in sorted((REPO / "tests").glob("test_messages_*.py")):
        importlib.import_module(path.stem)
    return TRIGGERS


def test_every_quoted_message_is_made_to_happen_by_a_test():
    """Each message the troubleshooting page quotes is printed by the real code in some
    tests/test_messages_*.py test (raised where it is raised, rendered by the commands' own
    handler, or logged): not merely a string somewhere in the source."""
    quoted = _quoted_messages()
    assert len(quoted) > 100
    doubled = sorted({m for m in quoted if quoted.count(m) > 1})
    assert not doubled, f"docs/troubleshooting.md quotes these twice: {doubled}"
    triggers = _triggers()
    missing = [m for m in quoted if m not in triggers]
    unknown = sorted(set(triggers) - set(quoted))
    assert not missing, ("docs/troubleshooting.md quotes messages no test makes happen "
                         "(add a @renders test in tests/test_messages_*.py):\n"
                         + "\n".join(missing))
    assert not unknown, ("tests declare messages docs/troubleshooting.md does not quote:\n"
                         + "\n".join(unknown))


def test_a_message_test_fails_when_the_text_differs_or_is_never_shown():
    from _messages import renders, shown

    shown("no Google Drive credentials found. Use one of:",
          "Error: no Google Drive credentials found. Use one of:")
    shown("the credentials … could not be refreshed",
          "Error: the credentials in t.json could not be refreshed: x")
    for heading, text in [("the credentials … could not be refreshed",
                           "could not be refreshed: the credentials"),  # out of order
                          ("not enough free disk space", "not enough disk space")]:
        with pytest.raises(AssertionError):
            shown(heading, text)

    @renders("a heading this test never shows")
    def silent():
        pass

    with pytest.raises(AssertionError, match="never showed"):
        silent()
    from _messages import TRIGGERS
    del TRIGGERS["a heading this test never shows"]


def test_troubleshooting_covers_quota_rate_limit_and_auth_errors():
    """The messages of the error classes users hit most each have an entry."""
    quoted = " ".join(_quoted_messages())
    for must in ("no Google Drive credentials found", "Drive refused the credentials",
                 "could not be refreshed", "service accounts have no Drive storage",
                 "Not enough Drive storage for", "the Drive storage quota is full",
                 "Drive refuses to serve this file", "Drive keeps answering",
                 "still failing after", "the downloaded bytes do not match Drive",
                 "not enough free disk space", "(zip-slip)", "items with that exact name"):
        assert must in quoted, must


# --------------------------------------------------------------------------- the worked example

def test_emulator_api_named_on_the_emulator_page_exists():
    import inspect

    from drivestage.emulator import Emulator, Faults, RequestRecord

    text = EMULATOR_MD.read_text(encoding="utf-8")
    missing = [f"emu.{n}" for n in set(re.findall(r"\bemu\.(\w+)", text))
               if n != "faults" and not hasattr(Emulator, n)]
    fault_calls = set(re.findall(r"\bfaults\.(\w+)", text))
    fault_calls |= set(re.findall(r"^\| `(\w+)\(", text, re.M))  # the fault table's first column
    missing += [f"faults.{n}" for n in fault_calls if not hasattr(Faults, n)]
    for field in ("method", "path", "query", "headers", "status", "bytes_in", "bytes_out",
                  "duration", "error"):
        assert field in RequestRecord.__dataclass_fields__
    init = inspect.signature(Emulator.__init__).parameters
    assert {"data_dir", "quota_bytes", "token", "port", "service_account"} <= set(init)
    kinds = set(re.findall(r"`(\w+)`", text.split("`kind` is one of", 1)[1].split("|", 1)[0]))
    assert kinds and kinds <= {"inject", "drop", "latency", "throttle", "corrupt",
                               "corrupt_upload", "redirect_media", "relocate_sessions",
                               "ignore_range", "lag_listing", "chaos", "short_pages", "empty_pages",
                               "expire_page_tokens", "keep_less", "drop_or_parents"}
    assert all(hasattr(Faults, k) for k in kinds)
    assert not missing, missing


def test_emulator_page_example_runs(tmp_path):
    text = EMULATOR_MD.read_text(encoding="utf-8")
    blocks = [b for b in _FENCE.findall(text) if b.startswith("# test_my_pipeline.py")]
    assert len(blocks) == 1, "docs/emulator.md must hold one block starting '# test_my_pipeline.py'"
    (tmp_path / "test_my_pipeline.py").write_text(blocks[0], encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # keep this repo's conftest/ini out
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVESTAGE_")}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_my_pipeline.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 passed" in res.stdout
