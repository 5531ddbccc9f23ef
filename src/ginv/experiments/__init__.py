"""The study's experiments, each one function writing data files and figures."""

from ginv.experiments.config import PROFILES, StudyConfig, profile

__all__ = ["PROFILES", "StudyConfig", "profile"]
