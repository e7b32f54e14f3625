"""A Hydra app as it is: hpsearch runs it with its parameters as Hydra overrides.

Its only addition for hpsearch is ``report``, three lines that write the summary file into
Hydra's output directory (``hydra.run.dir``, which hpsearch sets to the run's ``out/``).
"""

import json
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def report(**metrics: float) -> None:
    with open(os.path.join(HydraConfig.get().runtime.output_dir, "performance_overview.txt"),
              "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in {**metrics, "finished": 1}.items())


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    config = OmegaConf.to_container(cfg, resolve=True)
    with open(os.path.join(HydraConfig.get().runtime.output_dir, "config.json"), "w") as f:
        json.dump(config, f)  # what the app was given, for the tests
    objective = (cfg.x - 1) ** 2 + 100 * cfg.model.lr + 0.1 * cfg.layers * cfg.epochs
    report(objective=objective)
    return objective


if __name__ == "__main__":
    main()
