"""Choosing a precision: the fastest that keeps validation accuracy within the tolerance of f32's."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

from core.runtime import RuntimeSpec
from training.embedding.precision import choose_precision

F32, BF16, INT8 = (RuntimeSpec("openvino", p) for p in ("f32", "bf16", "int8"))


def _head() -> keras.Model:
    """Predicts class = the feature's first column (rounded)."""
    first = keras.layers.Lambda(lambda x: ops.clip(ops.round(x[:, 0]), 0, 2))
    one_hot = keras.layers.Lambda(lambda c: ops.one_hot(ops.cast(c, "int32"), 3))
    features = keras.Input((1,))
    return keras.Model(features, one_hot(first(features)))


@dataclass
class _Base:
    primary: RuntimeSpec
    speeds: dict[str, float]

    def candidates(self):
        ranked = sorted(self.speeds, key=self.speeds.get, reverse=True)
        return [RuntimeSpec("openvino", p) for p in ranked if self.speeds[p] >= self.speeds["f32"]]


@dataclass
class _Features:
    base: _Base
    wrong: dict[str, int] = field(default_factory=dict)  # validation photos each precision gets wrong
    n: int = 50  # photos per split
    embedded: list[tuple[str, str, int]] = field(default_factory=list)  # (precision, split, photos) asked for

    def part(self, name):
        labels = np.arange(self.n) % 3
        return labels[:, None].astype(float), labels

    def vectors_for(self, spec, name, rows=None):
        x, y = self.part(name)
        x = x.copy()
        x[: self.wrong.get(spec.precision, 0), 0] = (y[: self.wrong.get(spec.precision, 0)] + 1) % 3
        x = x if rows is None else x[rows]
        self.embedded.append((spec.precision, name, len(x)))
        return x


def test_the_fastest_precision_within_tolerance_wins() -> None:
    base = _Base(INT8, {"f32": 30.0, "bf16": 20.0, "int8": 100.0})
    choice = choose_precision(_Features(base, {"int8": 1}), _head(), tolerance=0.02, fixed=False)
    assert choice.chosen == INT8  # one photo of 50 is within one photo's grace
    assert set(choice.val_accuracy) == {"f32", "int8"}  # bf16 is slower than f32 here: never checked
    assert choice.val_accuracy == {"f32": 1.0, "int8": 0.98} and set(choice.test_accuracy) == {"f32", "int8"}
    assert len(choice.test_probs) == 50 and choice.sample == {"val": 50, "test": 50}  # a small run: every photo


def test_a_precision_that_costs_accuracy_is_passed_over() -> None:
    base = _Base(INT8, {"f32": 30.0, "bf16": 60.0, "int8": 100.0})
    choice = choose_precision(_Features(base, {"int8": 5, "bf16": 1}), _head(), tolerance=0.02, fixed=False)
    assert choice.chosen == BF16 and choice.val_accuracy["int8"] == 0.9
    choice = choose_precision(_Features(base, {"int8": 5, "bf16": 5}), _head(), tolerance=0.02, fixed=False)
    assert choice.chosen == F32


def test_a_fixed_precision_is_kept_and_compared_with_f32() -> None:
    base = _Base(INT8, {"f32": 30.0, "bf16": 60.0, "int8": 100.0})
    choice = choose_precision(_Features(base, {"int8": 10}), _head(), tolerance=0.02, fixed=True)
    assert choice.chosen == INT8 and set(choice.val_accuracy) == {"f32", "int8"}
    assert choice.summary()["chosen"] == "openvino-int8"


def test_a_fixed_precision_is_used_even_when_measured_slower_than_f32() -> None:
    """``train.precision: bf16`` on a CPU where bf16 runs slower than f32 (measured so on AVX-512 without AMX)."""
    base = _Base(BF16, {"f32": 30.0, "bf16": 18.0, "int8": 100.0})
    choice = choose_precision(_Features(base, {"bf16": 1}), _head(), tolerance=0.02, fixed=True)
    assert choice.chosen == BF16 and set(choice.test_accuracy) == {"bf16", "f32"}


def test_a_large_split_is_compared_on_a_stratified_sample_and_the_choice_scores_it_whole() -> None:
    base = _Base(INT8, {"f32": 30.0, "bf16": 60.0, "int8": 100.0})
    features = _Features(base, {"int8": 300}, n=30_000)  # int8 gets its first 300 photos wrong: 1 %
    choice = choose_precision(features, _head(), tolerance=0.02, fixed=False)
    assert choice.sample == {"val": 1998, "test": 1998} and choice.chosen == INT8  # 666 of each class
    compared = [(p, n) for p, name, n in features.embedded if name == "val"]
    assert compared == [("int8", 1998), ("bf16", 1998), ("f32", 1998)]  # never the whole 30 000
    assert len(choice.test_probs) == 30_000  # the gate sees the chosen precision on the whole test split


def test_int8_gets_the_overflow_fix_only_on_a_cpu_without_vnni() -> None:
    from core.runtime.int8 import cpu_has_vnni

    epyc_avx2 = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
    xeon = "flags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_int8\n"
    zen4 = "flags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n"
    assert cpu_has_vnni(epyc_avx2) is False
    assert cpu_has_vnni(xeon) is True and cpu_has_vnni(zen4) is True
    assert cpu_has_vnni("model name\t: unknown\n") is None  # no flags line: NNCF's default stays
