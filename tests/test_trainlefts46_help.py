"""trainlefts46 (5): the batch keys' description (shown in docs/config.md and in the config the
trainer writes out with each key's comment) said only "total over all DDP processes"; the
warning a run gives says the batch is not "a multiple of the processes", and what it trains
then. The description says it now, where a user sets the batch."""
from __future__ import annotations

from pathlib import Path

import pytest

from trainer.config import Config, describe_keys, dump_yaml

DOCS = Path(__file__).resolve().parent.parent / "docs" / "config.md"
SAID = ("total over all DDP processes: a multiple of the processes, else the largest multiple "
        "below is trained")


@pytest.mark.parametrize("key", ["train.batch_size", "train.freeze_batch_size"])
def test_the_batch_keys_say_a_multiple_of_the_processes(key):
    assert SAID in describe_keys()[key]
    row = next(line for line in DOCS.read_text(encoding="utf-8").splitlines()
               if line.startswith(f"| `{key}` |"))
    assert SAID in row, row
    name = key.split(".", 1)[1]
    line = next(line for line in dump_yaml(Config()).splitlines()
                if line.startswith(f"  {name}: "))
    assert SAID in line, line
