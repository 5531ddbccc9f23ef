"""Invariance measures for any classifier: orbit accuracy, DI, LI, SI and sensitivity, kept in
a registry (:data:`MEASURES`, :func:`register_measure`), and layer-wise equivariance."""

from ginv.measures.base import Measure, OrbitMeasure, Setting
from ginv.measures.layer_report import LayerReport
from ginv.measures.layers import layer_equivariance, layer_invariance, layer_table
from ginv.measures.memory import Footprint, probe
from ginv.measures.orbit import OrbitValues, orbit_logits, orbit_values
from ginv.measures.registry import LEGACY_NAMES, MEASURES, METRICS, register_measure
from ginv.measures.report import MeasureReport
from ginv.measures.run import measure
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
    "LEGACY_NAMES",
    "MEASURES",
    "METRICS",
    "Footprint",
    "LayerReport",
    "Measure",
    "MeasureReport",
    "OrbitMeasure",
    "OrbitValues",
    "SaliencyConfig",
    "Setting",
    "aligned_orbit_maps",
    "blur",
    "gaussian_kernel",
    "input_jacobians",
    "integrated_gradients",
    "jacobian_spectral_norm",
    "layer_equivariance",
    "layer_invariance",
    "layer_table",
    "measure",
    "orbit_logits",
    "orbit_values",
    "probe",
    "quadrature",
    "register_measure",
    "saliency_map",
    "saliency_similarity",
    "threshold_map",
    "weight_spectral_norms",
]
