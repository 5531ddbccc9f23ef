"""Invariance measures for any classifier: orbit accuracy, DI, LI, SI and sensitivity."""

from ginv.measures.layers import layer_invariance, layer_table
from ginv.measures.memory import Footprint, probe
from ginv.measures.orbit import OrbitValues, orbit_logits, orbit_values
from ginv.measures.report import METRICS, MeasureReport, measure
from ginv.measures.saliency import (
    SaliencyConfig,
    aligned_orbit_maps,
    blur,
    gaussian_kernel,
    integrated_gradients,
    quadrature,
    saliency_map,
    saliency_similarity,
    threshold_map,
)
from ginv.measures.sensitivity import (
    input_jacobians,
    jacobian_spectral_norm,
    weight_spectral_norms,
)

__all__ = [
    "METRICS",
    "Footprint",
    "MeasureReport",
    "OrbitValues",
    "SaliencyConfig",
    "aligned_orbit_maps",
    "blur",
    "gaussian_kernel",
    "input_jacobians",
    "integrated_gradients",
    "jacobian_spectral_norm",
    "layer_invariance",
    "layer_table",
    "measure",
    "orbit_logits",
    "orbit_values",
    "probe",
    "quadrature",
    "saliency_map",
    "saliency_similarity",
    "threshold_map",
    "weight_spectral_norms",
]
