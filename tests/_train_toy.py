"""Run by test_training in a subprocess: a toy training run that the test kills and resumes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import synthetic_dataset

from ginv.training import TrainConfig, Trainer

out, epochs, resume = Path(sys.argv[1]), int(sys.argv[2]), "--resume" in sys.argv
configs = [
    TrainConfig(model="mlp", reg="logit", nu=nu, seed=seed, epochs=epochs, batch_size=32,
                depth=2, width=32, n_train=256, n_val=64)
    for seed, nu in ((0, 0.5), (1, 2.0))
]  # fmt: skip
Trainer(configs, synthetic_dataset(), out, device="cpu", progress=False).fit(resume=resume)
