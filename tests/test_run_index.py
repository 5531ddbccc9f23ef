"""runs/index.csv: which hash folder holds which run; safe with several writers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import synthetic_dataset

from ginv.training import TrainConfig, Trainer
from ginv.training.index import INDEX_COLUMNS, read_index

TOY = dict(epochs=2, batch_size=32, depth=2, width=16, n_train=256, n_val=64)


def test_finished_runs_are_listed_in_index_csv_beside_their_hash_folders(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    configs = [TrainConfig(seed=s, reg="logit", nu=0.5, **TOY) for s in (0, 1)]
    Trainer(configs, synthetic_dataset(), tmp_path / "batch", "cpu", progress=False,
            member_dirs=[runs / c.key() for c in configs]).fit()  # fmt: skip
    rows = read_index(runs / "index.csv")
    assert [r["name"] for r in rows] == [
        "mnist-R4-mlp-logit-nu0.5-seed0", "mnist-R4-mlp-logit-nu0.5-seed1"
    ]  # fmt: skip
    assert [r["folder"] for r in rows] == [r["key"] for r in rows] == [c.key() for c in configs]
    assert tuple(rows[0]) == INDEX_COLUMNS
    assert (rows[0]["family"], rows[0]["nu"], rows[1]["seed"]) == ("mnist-R4-mlp-logit", "0.5", "1")
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        ["index.csv", *(c.key() for c in configs)]
    )
    # a run trained again replaces its row
    Trainer(configs[:1], synthetic_dataset(), tmp_path / "again", "cpu", progress=False,
            member_dirs=[runs / configs[0].key()]).fit(resume=False)  # fmt: skip
    assert [r["name"] for r in read_index(runs / "index.csv")] == [r["name"] for r in rows]


_WRITER = """
import sys
from pathlib import Path
from ginv.training.index import update_index
runs, first = Path(sys.argv[1]), int(sys.argv[2])
for seed in range(first, first + 25):
    run = {"config": {"seed": seed, "epochs": 2}, "best_val_acc": 0.5, "selected_epoch": 1,
           "epochs_trained": 2}
    update_index(runs / f"run{seed}", run)
"""


def test_several_writers_lose_no_row_and_leave_no_lock_file(tmp_path: Path) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(25 * i)])
               for i in range(3)]  # fmt: skip
    assert all(w.wait(timeout=120) == 0 for w in writers)
    rows = read_index(tmp_path / "index.csv")
    assert sorted(int(r["seed"]) for r in rows) == list(range(75))
    assert [p.name for p in tmp_path.iterdir()] == ["index.csv"]
