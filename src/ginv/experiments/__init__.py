"""The study's experiments (SPEC §6), each one function writing data files and figures."""

from ginv.experiments.config import PROFILES, StudyConfig, profile

__all__ = ["PROFILES", "StudyConfig", "profile"]
