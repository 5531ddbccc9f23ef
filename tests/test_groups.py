"""Group axioms and the exactness of the pixel-permutation action."""

from __future__ import annotations

import itertools

import pytest
import torch

from ginv.errors import GinvError
from ginv.groups import D4, GROUPS, R4, T3, PermutationGroup, Tn, get_group

ALL = [*GROUPS, "T4", "T3y", "T6"]


def images(b: int = 5, c: int = 2, h: int = 12, w: int = 12) -> torch.Tensor:
    return torch.randn(b, c, h, w, dtype=torch.float64)


@pytest.mark.parametrize("name", ALL)
def test_group_axioms_on_random_images(name: str) -> None:
    group = get_group(name)
    x = images()
    e = group.elements[0]
    assert torch.equal(group.act(e, x), x), "element 0 is the identity"
    for g in group.elements:
        assert torch.equal(group.act(group.inverse(g), group.act(g, x)), x)
        assert torch.equal(group.act_inverse(g, group.act(g, x)), x)
        assert group.compose(g, group.inverse(g)) == e
    for g, h in itertools.product(group.elements, repeat=2):
        gh = group.compose(g, h)
        assert gh in group.elements  # closure
        assert torch.equal(group.act(gh, x), group.act(g, group.act(h, x)))
    for g, h, k in itertools.product(group.elements, repeat=3):
        assert group.compose(group.compose(g, h), k) == group.compose(g, group.compose(h, k))
    # every element acts differently (faithful) and as a permutation of pixel values
    outs = [group.act(g, x) for g in group.elements]
    assert len({o.flatten().tolist().__repr__() for o in outs}) == len(group)
    for o in outs:
        assert torch.equal(o.flatten(-2).sort(-1).values, x.flatten(-2).sort(-1).values)


def test_r4_is_rot90_and_t3_shifts_by_a_third() -> None:
    x = images(h=36, w=36)
    r4, t3 = R4(), T3()
    for k in range(4):
        assert torch.equal(r4.act(k, x), torch.rot90(x, k, dims=(-2, -1)))
    for k in range(3):
        assert torch.equal(t3.act(k, x), torch.roll(x, 12 * k, dims=-1))
    assert len(D4()) == 8 and len(Tn(5, "y")) == 5


def test_orbit_order_and_shape() -> None:
    x = images(b=3, h=36, w=36)
    for group in (R4(), T3(), D4()):
        orbit = group.orbit(x)
        assert orbit.shape == (len(group) * 3, 2, 36, 36)
        for g in group.elements:
            assert torch.equal(orbit[g * 3 : (g + 1) * 3], group.act(g, x))


def test_per_image_elements_match_single_element_action() -> None:
    group = D4()
    x = images(b=8)
    g = torch.randint(len(group), (8,))
    out = group.act(g, x)
    for i in range(8):
        assert torch.equal(out[i], group.act(int(g[i]), x[i : i + 1])[0])
    # leading dimensions beyond the batch (several models at once)
    x2 = torch.randn(3, 4, 1, 12, 12)
    g2 = torch.randint(len(group), (3, 4))
    out2 = group.act(g2, x2)
    assert torch.equal(out2[2, 1], group.act(int(g2[2, 1]), x2[2, 1:2])[0])
    assert torch.equal(group.act_inverse(g2, out2), x2)


def test_orbit_is_a_group_invariant_set() -> None:
    """The orbit of g·x is the orbit of x, re-ordered by left multiplication."""
    group, x = R4(), images(b=2)
    for g in group.elements:
        moved = group.orbit(group.act(g, x)).view(len(group), 2, 2, 12, 12)
        base = group.orbit(x).view(len(group), 2, 2, 12, 12)
        for h in group.elements:
            assert torch.equal(moved[h], base[group.compose(h, g)])


def test_bad_shapes_are_clear_errors() -> None:
    with pytest.raises(GinvError, match="square"):
        R4().act(1, torch.zeros(1, 1, 36, 30))
    with pytest.raises(GinvError, match="divisible by 3"):
        T3().orbit(torch.zeros(1, 1, 35, 35))
    with pytest.raises(GinvError, match="unknown group"):
        get_group("Q7")
    with pytest.raises(GinvError, match="shape"):
        R4().act(torch.zeros(3, dtype=torch.long), torch.zeros(2, 1, 4, 4))


def test_constant_images_are_fixed() -> None:
    assert R4().is_fixed(torch.full((1, 1, 8, 8), 0.3))
    assert not T3().is_fixed(torch.arange(36.0).view(1, 1, 6, 6))


def test_groups_can_be_built_from_new_generators() -> None:
    transpose = lambda h, w: torch.arange(h * w).view(h, w).T.flatten()  # noqa: E731
    group = PermutationGroup("Transpose", [transpose], 2)
    x = images()
    assert torch.equal(group.act(1, x), x.transpose(-2, -1))
    with pytest.raises(GinvError, match="distinct elements"):
        PermutationGroup("Wrong", [transpose], 3)


def test_element_names_say_what_each_element_does() -> None:
    """Names are words in the generators, applied right to left, in element order."""
    x = images()
    rot = lambda v, k=1: torch.rot90(v, k, dims=(-2, -1))  # noqa: E731
    mirror = lambda v: torch.flip(v, dims=(-1,))  # noqa: E731
    expected = {
        "id": x,
        "rot90": rot(x),
        "rot90²": rot(x, 2),
        "rot90³": rot(x, 3),
        "flipH": mirror(x),
        "flipH∘rot90": mirror(rot(x)),
        "rot90∘flipH": rot(mirror(x)),
        "flipH∘rot90²": mirror(rot(x, 2)),
    }
    d4 = D4()
    assert d4.element_names == [
        "id", "rot90", "flipH", "rot90²", "flipH∘rot90", "rot90∘flipH", "rot90³", "flipH∘rot90²"
    ]  # fmt: skip
    for g, name in enumerate(d4.element_names):
        assert torch.equal(d4.act(g, x), expected[name]), name
    assert R4().element_names == ["id", "rot90", "rot90²", "rot90³"]
    assert T3().element_names == ["id", "shiftx", "shiftx²"]
    assert get_group("T3y").element_names == ["id", "shifty", "shifty²"]
    assert get_group("FlipV").element_names == ["id", "flipV"]
    transpose = lambda h, w: torch.arange(h * w).view(h, w).T.flatten()  # noqa: E731
    assert PermutationGroup("T", [transpose], 2, generator_names=["t"]).element_names == ["id", "t"]
    with pytest.raises(GinvError, match="generator names"):
        PermutationGroup("T", [transpose], 2, generator_names=["a", "b"])


def _check_axioms(group, x: torch.Tensor) -> None:
    """Identity, closure/compatibility g·(h·x) = (g∘h)·x, inverses, orbit layout."""
    n = len(group)
    assert group.elements == list(range(n)) and group.element_names[0] == "id"
    assert torch.equal(group.act(0, x), x)
    for g, h in itertools.product(group.elements, repeat=2):
        assert torch.equal(group.act(g, group.act(h, x)), group.act(group.compose(g, h), x))
    for g in group.elements:
        assert group.compose(g, group.inverse(g)) == 0
        assert torch.equal(group.act_inverse(g, group.act(g, x)), x)
    orbit = group.orbit(x)
    for g in group.elements:
        assert torch.equal(orbit[g * len(x) : (g + 1) * len(x)], group.act(g, x))


def test_from_transform_builds_groups_that_satisfy_the_axioms() -> None:
    from ginv.groups import Group, from_transform

    def transpose(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-2, -1)

    swap = from_transform(transpose, transpose, 2, name="Transpose")
    channels = from_transform(lambda x: x.roll(-1, -3), lambda x: x.roll(1, -3), 3, name="C3")
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    for group in (swap, channels):
        assert isinstance(group, Group)
        _check_axioms(group, x)
    assert swap.element_names == ["id", "transpose"]
    assert channels.element_names == ["id", "f", "f²"]
    per_image = channels.act(torch.tensor([0, 1, 2, 1]), x)
    assert torch.equal(per_image[1], channels.act(1, x[1:2])[0])


def test_a_users_own_group_class_is_a_group_and_is_measured() -> None:
    from ginv.groups import Group
    from ginv.testing import assert_invariant

    class Mirror:
        name, exact = "Mirror", True
        elements, element_names = [0, 1], ["id", "flip"]

        def __len__(self) -> int:
            return 2

        def compose(self, g: int, h: int) -> int:
            return (g + h) % 2

        def inverse(self, g: int) -> int:
            return g

        def act(self, g, x):
            return x.flip(-1) if g == 1 else x

        def act_inverse(self, g, x):
            return self.act(g, x)

        def orbit(self, x):
            return torch.cat([x, x.flip(-1)])

    mirror = Mirror()
    assert isinstance(mirror, Group)
    _check_axioms(mirror, images())
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(288, 3)).double()
    from ginv.models import OrbitAverage

    assert_invariant(OrbitAverage(model, mirror), mirror, images())


def test_order_is_computed_and_get_group_is_cached() -> None:
    transpose = lambda h, w: torch.arange(h * w).view(h, w).T.flatten()  # noqa: E731
    assert len(PermutationGroup("Transpose", [transpose])) == 2
    with pytest.raises(GinvError, match=r"order=3 given, but the generators give 2"):
        PermutationGroup("Wrong", [transpose], 3)
    assert get_group("R4") is get_group("R4")
    assert "_actions" not in repr(R4()) and "_device_perms" not in repr(R4())
