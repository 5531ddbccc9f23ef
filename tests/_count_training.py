"""`ginv` itself, but every run a trainer finishes is appended to $GINV_TRAINED_LOG (one line per
run: pid and run name), so that tests can tell whether any run was trained twice."""

import os
import sys

from ginv.cli import main
from ginv.training import trainer

_write = trainer.Trainer.write_results


def _counted(self):
    results = _write(self)
    with open(os.environ["GINV_TRAINED_LOG"], "a") as log:
        log.writelines(f"{os.getpid()} {r['name']} {r['config']['epochs']}\n" for r in results)
    return results


trainer.Trainer.write_results = _counted
sys.exit(main(sys.argv[1:]))
