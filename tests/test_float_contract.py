"""The float32 contract on full-width MobileNets, and proof that its tolerance can fail.

harness.FLOAT_RTOL bounds max|sim - ref| / max|ref| per tensor (ref = LiteRT BUILTIN_REF); its
value comes from the noise floor measured in benchmarks/FLOAT_NOISE.md (benchmarks/float_noise.py):
two correct float32 evaluations of these models (LiteRT's optimized kernels and its reference
kernels, or either and a float64 evaluation) differ by up to ~7e-6 of max|b| per tensor.

- Every tensor of float32 MobileNet V1 and V2 at width 1.0 / 224 (1000 classes) is within
  FLOAT_RTOL of BUILTIN_REF, for two model seeds (V1) and two inputs each: uniform [-1, 1] and a
  smooth image-like input.
- The tolerance is meaningful: on V1 1.0/224 the noise floor (simulator vs reference, and LiteRT's
  optimized kernels vs reference) sits below it with margin, while a simulator with one layer's
  weights scaled by 1 + 2 * FLOAT_RTOL, or rounded to float16 (a precision bug), exceeds it.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.harness import FLOAT_RTOL, check_against_reference, random_input, require, tensor_mismatches

IMAGE_SEED = 4242  # benchmarks/float_noise.py's image-like inputs (BatchNorm calibration uses the model seed)


def mobilenet(family: str, seed: int) -> bytes:
    require("tensorflow")
    from mobilegen.convert import keras_models
    from tests.models import tflite_model

    builder = keras_models.build_mobilenet_v1 if family == "v1" else keras_models.build_mobilenet_v2
    # The same cache key as tests/test_mobilenet.py's full-size models (seed 0).
    return tflite_model(f"mobilenet_{family}", builder, dict(alpha=1.0, resolution=224, classes=1000, seed=seed),
                        "float32")


def inputs(kind: str, shape) -> np.ndarray:
    if kind == "uniform":
        return random_input(SimpleNamespace(dtype="float32", shape=shape), 0)
    from mobilegen.convert.keras_models import calibration_images

    return calibration_images(1, shape[1], shape[2], seed=IMAGE_SEED)


@pytest.mark.slow
@pytest.mark.parametrize("family,seed", [("v1", 0), ("v1", 1), ("v2", 0)], ids=lambda v: str(v))
def test_full_width_float_within_contract(family, seed):
    from mobilegen.tflite.reader import read_model

    buf = mobilenet(family, seed)
    g = read_model(buf)
    shape = g.tensors[g.inputs[0]].shape
    for kind in ("uniform", "image"):
        check_against_reference(buf, f"MobileNet {family} 1.0/224 float32 seed {seed}, {kind} input", x=inputs(kind, shape))


def _optimized_kernels(model: bytes, x: np.ndarray) -> dict[int, np.ndarray]:
    """LiteRT's optimized kernels without the XNNPACK delegate, every tensor kept."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=model, num_threads=1, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return {int(t): np.array(interp.get_tensor(t)) for op in interp._get_ops_details() for t in op["outputs"] if t >= 0}


def _worst(got: dict, want: dict, tensors) -> float:
    return max(float(np.abs(got[i].astype(np.float64) - want[i]).max()) / float(np.abs(want[i]).max()) for i in tensors)


@pytest.mark.slow
def test_float_tolerance_separates_noise_from_errors():
    require("ai_edge_litert")
    from mobilegen.plan import Conv2D, build_plan
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import run_reference

    buf = mobilenet("v1", 0)
    g = read_model(buf)
    x = inputs("uniform", g.tensors[g.inputs[0]].shape)
    ref = run_reference(buf, x)
    floats = [i for i in g.written_tensors() if g.tensors[i].dtype == "float32"]
    where = {i: f"tensor {i}" for i in floats}

    # The noise floor is well inside the tolerance: the simulator, and LiteRT's own optimized
    # kernels, against the reference (FLOAT_NOISE.md: <= 7e-6 on these models).
    sim = Simulator(build_plan(g)).run([x])
    assert _worst(sim, ref, floats) < FLOAT_RTOL / 2
    assert _worst(_optimized_kernels(buf, x), ref, floats) < FLOAT_RTOL

    # One pointwise conv in the middle of the network, perturbed: the check must fail, first at
    # that conv's output.
    def perturbed(change) -> list[str]:
        plan = build_plan(g)
        convs = [k for k in plan.kernels if isinstance(k, Conv2D) and k.win.k_h == 1 and k.win.k_w == 1]
        k = convs[len(convs) // 2]
        k.weights = change(k.weights).astype(np.float32)
        problems = tensor_mismatches(Simulator(plan).run([x]), ref, where, ("perturbed sim", "reference"))
        assert not problems or problems[0].startswith(f"tensor {k.output}:"), problems[0]
        return problems

    assert perturbed(lambda w: w * (1 + 2 * FLOAT_RTOL)), "weights off by twice the tolerance pass the check"
    assert perturbed(lambda w: w.astype(np.float16)), "float16 weights pass the check"
    assert not perturbed(lambda w: w), "the unperturbed plan fails"


def test_compare_default_is_the_simulator_contract():
    """`mobilegen compare`'s default --rtol is the documented float contract (DESIGN.md: 5e-5);
    the tests hold the simulator tighter, on their well-conditioned models."""
    import inspect

    from mobilegen.cli.compare import compare_cmd
    from mobilegen.compare import FLOAT_RTOL as COMPARE_RTOL

    assert FLOAT_RTOL <= COMPARE_RTOL == 5e-5
    assert inspect.signature(compare_cmd).parameters["rtol"].default.default == COMPARE_RTOL
