"""The estimator on CuPy: the same seed gives the same model as on NumPy (to
float tolerance), and a GPU-fitted model pickles as NumPy arrays that load
and predict on the CPU. Needs a CUDA GPU; skipped cleanly without one.

Not yet run on a real GPU (no device was lent to the sessions so far).
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skrcnn import backend

pytestmark = pytest.mark.gpu

if not backend.gpu_available():
    pytest.skip("needs CuPy and a CUDA GPU", allow_module_level=True)

from scenes import SMALL, colour_scenes  # noqa: E402
from skrcnn.segmenter import RecurrentCNNSegmenter  # noqa: E402


def _fit(device, teacher=False, **params):
    X, y = colour_scenes(12)
    model = RecurrentCNNSegmenter(architecture=SMALL, n_instances=2,
                                  max_iter=2, learning_rate=1e-2,
                                  random_state=0, device=device, **params)
    fit_params = {}
    if teacher:  # soft targets: a smoothed one-hot of a shifted labelling
        shifted = np.roll(y, 3, axis=2)
        proba = 0.1 + 0.7 * (shifted[..., None] == np.arange(3))
        fit_params["teacher_proba"] = proba.astype(np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_params), X


@pytest.mark.parametrize("params", [dict(), dict(sampling="patch",
                                                 patches_per_epoch=64),
                                    dict(inference="shift"),
                                    dict(instance_loss="all"),
                                    dict(class_weight="balanced"),
                                    dict(test_time_flip=True),
                                    dict(scale_range=(0.8, 1.25)),
                                    dict(weight_averaging=0.9),
                                    dict(test_time_flip=True,
                                         test_time_scales=(0.75, 1.0)),
                                    dict(superpixels="felzenszwalb"),
                                    dict(teacher=True,
                                         scale_range=(0.8, 1.25))])
def test_same_seed_same_model_on_cpu_and_gpu(params):
    # SGD: Adam's normalised steps of about +-lr for tiny gradients could
    # amplify float32 rounding differences between the backends.
    params = {"solver": "sgd", **params}
    cpu, X = _fit("cpu", **params)
    gpu, _ = _fit("gpu", **params)
    for a, b in zip(cpu.coefs_ + cpu.intercepts_, gpu.coefs_ + gpu.intercepts_):
        assert type(b) is np.ndarray
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cpu.predict_proba(X[:2]),
                               gpu.predict_proba(X[:2]), atol=1e-3)


def test_same_seed_same_model_twice_on_the_gpu():
    first, _ = _fit("gpu", weight_averaging=0.9)
    second, _ = _fit("gpu", weight_averaging=0.9)
    for a, b in zip(first.coefs_ + first.intercepts_,
                    second.coefs_ + second.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params", [dict(), dict(solver="sgd"),
                                    dict(weight_averaging=0.9),
                                    dict(early_stopping=True,
                                         validation_fraction=0.25),
                                    dict(class_weight="balanced")])
def test_gpu_fitted_model_loads_and_predicts_on_cpu(params):
    gpu, X = _fit("gpu", **params)
    expected = gpu.predict_proba(X[:2])
    # Nothing of CuPy in the file: no device array in any fitted state
    # (solver moments, running average, class weights).
    assert b"cupy" not in pickle.dumps(gpu)
    restored = pickle.loads(pickle.dumps(gpu))
    restored.set_params(device="cpu")
    np.testing.assert_allclose(restored.predict_proba(X[:2]), expected,
                               atol=1e-5)


def test_out_of_memory_on_the_gpu_is_retried_in_smaller_bands():
    import cupy

    model, X = _fit("gpu")
    # 1024x1024 with this small network: the whole pass needs some 200 MB
    # (its first convolution's expanded input alone is 27 planes of the
    # padded image), the rest of a labelling about 50 MB (the image, its
    # padded copy, the scores and the softmax's temporaries, 12.6 MB
    # each). A 96 MiB pool fails the whole pass but not bands of a
    # quarter of it.
    image = np.tile(X[0], (52, 43, 1))[:1024, :1024]
    expected = model.predict_proba([image])[0]
    model.set_params(max_inference_bytes=2 ** 31)
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    limit = pool.get_limit()
    try:
        pool.set_limit(size=96 * 2 ** 20)
        with pytest.warns(UserWarning, match="out of memory on a band of"):
            retried = model.predict_proba([image])[0]
    finally:
        pool.set_limit(size=limit)
    np.testing.assert_allclose(retried, expected, rtol=0, atol=1e-5)
