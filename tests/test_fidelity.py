"""The paper's claims are judged by their stated readings, on results made by hand."""

from __future__ import annotations

from ginv.experiments.fidelity import claims, table_rows


def _row(group: str, model: str, acc: float, li: float, di: float, si: float, **extra) -> dict:
    values = {"accuracy": acc, "li": li, "di": di, "si": si}
    return {"group": group, "model": model, **values, **{f"{k}_std": 0.0 for k in values}, **extra}


def _table(ir_reached: bool = True, wt_acc: float = 0.946) -> dict:
    return {
        "data": {
            "rows": [
                _row("R4", "WT", wt_acc, 1e-12, 1e-14, 1.0),
                _row("R4", "DA", 0.940, 98.0, 0.3, 0.17),
                _row("R4", "IR", 0.879, 0.02, 1e-3, 0.95, val_si_per_seed=[0.96, 0.95],
                     si_target_reached=ir_reached),
            ]
        }
    }  # fmt: skip


def test_claims_supported_by_the_papers_own_numbers() -> None:
    drift = {"data": {"curves": {
        "R4/DA": [[0.0, 1, 0, 0.3, 0], [0.1, 0.9, 0, 0.5, 0], [1.0, 0.2, 0, 1.2, 0]],
        "R4/WT": [[0.0, 1, 0, 0.0, 0], [0.1, 0.9, 0, 0.0, 0], [1.0, 0.2, 0, 0.0, 0]],
        "R4/IR": [[0.0, 1, 0, 1e-3, 0], [0.1, 0.9, 0, 1e-3, 0], [1.0, 0.2, 0, 1e-2, 0]],
    }}}  # fmt: skip
    spectral = {"data": {"R4/DA": [4.0, 0.3], "R4/IR-logit": [1.8, 0.1], "R4/IR-kl": [2.2, 0.1]}}
    verdicts = {c[1][:2]: c[2] for c in claims(_table(), drift, spectral)}
    assert verdicts == {"1.": "supported", "2a": "supported", "2b": "supported",
                        "3.": "supported", "4.": "supported", "5.": "supported"}  # fmt: skip


def test_claims_fail_on_the_reading_that_breaks() -> None:
    spectral = {"data": {"R4/DA": [4.0, 0.3], "R4/IR-logit": [1.8, 0.1], "R4/IR-nlogit": [5.3, 1]}}
    verdicts = {
        c[1][:2]: c[2] for c in claims(_table(ir_reached=False, wt_acc=0.93), None, spectral)
    }
    assert verdicts["3."] == "NOT supported"  # a seed missed the validation SI target
    assert verdicts["2b"] == "NOT supported"  # DA is more accurate than WT
    assert verdicts["5."] == "NOT supported"  # nlogit raises σmax(J)
    assert "4." not in verdicts  # drift did not run


def test_table_rows_put_accuracy_in_percent_beside_the_paper() -> None:
    rows = {(r[0], r[1], r[2]): r for r in table_rows(_table())}
    # ginv's numbers to their precision (three digits; std 0 over several seeds is "± 0")
    assert rows[("R4", "DA", "accuracy")][3:] == ["94 ± 0.5", "94.0 ± 0", "+0"]
    assert rows[("R4", "IR", "si")][3:] == ["0.95 ± 0.03", "0.950 ± 0", "+0"]


def test_table_rows_of_one_seed_have_no_zero_std() -> None:
    table = _table()
    for r in table["data"]["rows"]:
        r["seeds"] = [0]
    rows = {(r[0], r[1], r[2]): r for r in table_rows(table)}
    assert rows[("R4", "WT", "li")][4:] == ["1.00e-12", "+1.00e-12"]  # the caption says n = 1
    assert rows[("R4", "DA", "si")][4:] == ["0.170", "+0"]
