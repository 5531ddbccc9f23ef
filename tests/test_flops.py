"""FLOP counts of real calls agree with the counts written by hand."""

from __future__ import annotations

from ginv.flops import forward_flops, input_gradient_flops, train_step_flops
from ginv.groups import R4
from ginv.models import build_model

SHAPE = (1, 36, 36)
FIRST, REST = 1296 * 128, 4 * 128 * 128 + 128 * 9  # multiply-adds per image


def test_mlp_counts_match_the_layer_sizes() -> None:
    model = build_model("mlp", R4(), (1, 36, 36), num_classes=9)
    assert forward_flops(model, SHAPE) == 2 * (FIRST + REST)
    # backward: weight gradients everywhere, input gradients everywhere but the first layer
    assert train_step_flops(model, SHAPE) == 2 * (FIRST + REST) + 2 * (FIRST + REST) + 2 * REST
    assert train_step_flops(model, SHAPE, images_per_sample=4) == 4 * train_step_flops(model, SHAPE)
    # a forward and a backward to the input only: no weight gradients
    assert input_gradient_flops(model, SHAPE) == 2 * (FIRST + REST) + 2 * (FIRST + REST)
    assert all(p.requires_grad for p in model.parameters())


def test_weight_tied_first_layer_costs_the_group_order() -> None:
    model = build_model("wt", R4(), (1, 36, 36), num_classes=9)
    assert forward_flops(model, SHAPE) == 2 * (4 * FIRST + REST)
    assert train_step_flops(model, SHAPE) == 2 * (4 * FIRST + REST) * 2 + 2 * REST


# the default CNN on 36×36: 3×3 convolutions of stride 2 to 18², 9² and 5² pixels, then the head
CONV1 = 18 * 18 * 16 * 1 * 9
CONV_REST = 9 * 9 * 32 * 16 * 9 + 5 * 5 * 64 * 32 * 9 + 64 * 9


def test_cnn_counts_match_the_layer_sizes() -> None:
    model = build_model("cnn", R4(), (1, 36, 36), num_classes=9)
    assert forward_flops(model, SHAPE) == 2 * (CONV1 + CONV_REST)
    # backward: weight gradients everywhere, input gradients everywhere but the first layer
    expected = 2 * (CONV1 + CONV_REST) * 2 + 2 * CONV_REST
    assert train_step_flops(model, SHAPE) == expected
    assert input_gradient_flops(model, SHAPE) == 2 * (CONV1 + CONV_REST) * 2
    tied = build_model("wt-cnn", R4(), (1, 36, 36), num_classes=9)
    assert forward_flops(tied, SHAPE) == 2 * (4 * CONV1 + CONV_REST)
