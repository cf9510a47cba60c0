"""Models made of tf.signal, tf.image and tf.linalg functions, exported with
tf.saved_model.save, run by sm_notebook.load at batch 1 and 3 against TensorFlow.

Tolerance: each float32 model has a float64 twin (the same function on float64 inputs)
whose TensorFlow result is the reference. Ours must be no farther from it (largest error
over the output) than twice TensorFlow's own float32 result is, plus 4 float32 ulps of the
output's magnitude: our float32 computation is as accurate as TensorFlow's.
"""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook  # noqa: E402

pytestmark = pytest.mark.interop
BATCHES = (1, 3)
SAMPLES, FRAME, STEP = 2000, 256, 128


def _audio(dtype):
    def audio(x):
        spectrogram = tf.signal.stft(x, FRAME, STEP, window_fn=tf.signal.hann_window)
        magnitude = tf.abs(spectrogram)
        mel = tf.signal.linear_to_mel_weight_matrix(40, FRAME // 2 + 1, 16000.0, 20.0, 4000.0,
                                                    dtype=dtype)
        log_mel = tf.math.log(tf.tensordot(magnitude, mel, 1) + 1e-6)
        mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :13]
        inverse = tf.signal.inverse_stft(spectrogram, FRAME, STEP,
                                         window_fn=tf.signal.inverse_stft_window_fn(STEP))
        frames = tf.signal.frame(x, 64, 32, pad_end=True)
        mdct = tf.signal.mdct(x, 64)  # Kaiser-Bessel-derived window: BesselI0e
        shifted = tf.signal.fftshift(magnitude, axes=-1)  # Roll
        windowed = x[:, :32] * tf.signal.kaiser_window(32, dtype=dtype)
        return {"log_mel": log_mel, "mfccs": mfccs, "inverse": inverse, "frames": frames,
                "mdct": mdct, "shifted": shifted, "windowed": windowed,
                "dct": tf.signal.idct(tf.signal.dct(frames, type=2), type=2)}
    return audio


def _linalg(dtype):
    def linalg(a):
        spd = tf.matmul(a, a, transpose_b=True) + 4 * tf.eye(4, dtype=dtype)
        chol = tf.linalg.cholesky(spd)
        q, r = tf.linalg.qr(a)
        sign, logdet = tf.linalg.slogdet(a)
        lu, perm = tf.linalg.lu(spd)
        return {"chol": chol, "inv": tf.linalg.inv(spd), "det": tf.linalg.det(spd),
                "solve": tf.linalg.solve(spd, a), "qr": tf.matmul(q, r) + tf.abs(r),
                "tri": tf.linalg.triangular_solve(chol, a), "logdet": logdet * sign,
                "eigenvalues": tf.linalg.eigvalsh(spd), "singular": tf.linalg.svd(a, compute_uv=False),
                "lu": lu, "perm": perm, "sqrtm": tf.linalg.sqrtm(spd),
                "lstsq": tf.linalg.lstsq(a, spd, l2_regularizer=0.1)}
    return linalg


class Models(tf.Module):
    def __init__(self):
        super().__init__()
        for name, make in (("audio", _audio), ("linalg", _linalg)):
            for dtype in (tf.float32, tf.float64):
                shape = [None, SAMPLES] if name == "audio" else [None, 4, 4]
                setattr(self, f"{name}_{dtype.name}", tf.function(
                    make(dtype), input_signature=[tf.TensorSpec(shape, dtype)]))

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 40, 3], tf.float32),
                                  tf.TensorSpec([None, 4], tf.float32),
                                  tf.TensorSpec([None], tf.float32)])
    def image(self, images, boxes, scores):
        small = tf.image.resize(images, [16, 20], antialias=True)
        sharp = tf.image.resize(images, [12, 15], method="lanczos3")
        box_index = tf.range(tf.shape(boxes)[0]) % tf.shape(images)[0]
        crops = tf.image.crop_and_resize(small, boxes, box_index, [5, 6])
        keep = tf.image.non_max_suppression(boxes, scores, 4, 0.3)
        soft_keep, soft_scores = tf.image.non_max_suppression_with_scores(
            boxes, scores, 4, 0.3, soft_nms_sigma=0.5)
        padded_keep, padded_count = tf.image.non_max_suppression_padded(
            boxes, scores, 4, 0.3, pad_to_max_output_size=True)
        combined = tf.image.combined_non_max_suppression(
            boxes[None, :, None, :], tf.stack([scores, 1 - scores], axis=-1)[None], 3, 5)
        clipped = tf.clip_by_value(small, 0.0, 1.0)
        hsv = tf.image.rgb_to_hsv(clipped)
        adjusted = tf.image.adjust_contrast(tf.image.adjust_saturation(
            tf.image.adjust_hue(clipped, 0.2), 1.5), 0.7)
        patches = tf.image.extract_patches(small, [1, 3, 3, 1], [1, 2, 2, 1], [1, 1, 1, 1], "SAME")
        return {"small": small, "sharp": sharp, "crops": crops, "keep": keep, "hsv": hsv,
                "soft_keep": soft_keep, "soft_scores": soft_scores, "padded_keep": padded_keep,
                "padded_count": padded_count, "combined_boxes": combined.nmsed_boxes,
                "combined_scores": combined.nmsed_scores, "combined_classes": combined.nmsed_classes,
                "combined_valid": combined.valid_detections, "adjusted": adjusted,
                "rgb": tf.image.hsv_to_rgb(hsv), "patches": patches}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    module = Models()
    path = tmp_path_factory.mktemp("signal") / "model"
    signatures = {"image": module.image}
    for name in ("audio", "linalg"):
        for dtype in ("float32", "float64"):
            signatures[f"{name}_{dtype}"] = getattr(module, f"{name}_{dtype}")
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path, tf.saved_model.load(str(path))


def _run_tf(theirs, signature, feeds):
    return {k: v.numpy() for k, v in theirs.signatures[signature](
        **{k: tf.constant(v) for k, v in feeds.items()}).items()}


def _feeds(name, batch, rng):
    if name == "audio":
        t = np.arange(SAMPLES) / 16000.0
        x = np.sin(2 * np.pi * rng.uniform(100, 3000, (batch, 1)) * t) + 0.1 * rng.standard_normal((batch, SAMPLES))
        return {"x": x.astype(np.float32)}
    a = rng.standard_normal((batch, 4, 4)) + 2 * np.eye(4)
    return {"a": a.astype(np.float32)}


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("name", ["audio", "linalg"])
def test_float_models_match_tensorflow(exported, name, optimize):
    path, theirs = exported
    model = sm_notebook.load(path, tags=["serve"], optimize=optimize)
    ours = model.signatures[f"{name}_float32"]
    rng = np.random.default_rng(12)
    for batch in BATCHES:
        feeds = _feeds(name, batch, rng)
        expected = _run_tf(theirs, f"{name}_float32", feeds)
        reference = _run_tf(theirs, f"{name}_float64",
                            {k: v.astype(np.float64) for k, v in feeds.items()})
        got = ours(**feeds).numpy()
        assert set(got) == set(expected)
        for key, want in expected.items():
            assert got[key].shape == want.shape and got[key].dtype == want.dtype, (key, batch)
            if want.dtype.kind in "iu":
                np.testing.assert_array_equal(got[key], want, err_msg=key)
                continue
            truth = reference[key]
            theirs_error = float(np.max(np.abs(want.astype(np.float64) - truth), initial=0.0))
            floor = 4 * np.finfo(np.float32).eps * float(np.max(np.abs(truth), initial=1.0))
            ours_error = float(np.max(np.abs(got[key].astype(np.float64) - truth), initial=0.0))
            assert ours_error <= 2 * theirs_error + floor, \
                f"{name} {key} batch {batch}: error {ours_error:.3g}, TensorFlow's {theirs_error:.3g}"


def test_image_model_matches_tensorflow(exported):
    """Resampling is a normalized weighted sum of at most 5 x 5 pixels (antialiased bilinear
    at scale 1/2) or 7 x 7 (lanczos3), then bilinear crops of that (6 roundings): at most
    2 (7 + 7) + 4 + 6 roundings of the largest pixel (1: images in [0, 1]); the colour chains
    add 3 x 8 roundings to the resampled values. NMS indices exact."""
    path, theirs = exported
    ours = sm_notebook.load(path, tags=["serve"]).signatures["image"]
    rng = np.random.default_rng(13)
    for batch in BATCHES:
        corners = rng.uniform(0, 0.6, (2 * batch + 3, 2)).astype(np.float32)
        feeds = {"images": rng.uniform(0, 1, (batch, 32, 40, 3)).astype(np.float32),
                 "boxes": np.concatenate([corners, corners + 0.4], axis=1),
                 "scores": rng.uniform(0, 1, 2 * batch + 3).astype(np.float32)}
        expected = _run_tf(theirs, "image", feeds)
        got = ours(**feeds).numpy()
        for key, want in expected.items():
            assert got[key].shape == want.shape and got[key].dtype == want.dtype, (key, batch)
            if want.dtype.kind in "iu":
                np.testing.assert_array_equal(got[key], want, err_msg=key)
            else:
                np.testing.assert_allclose(got[key], want, rtol=0,
                                           atol=(38 + 24) * np.finfo(np.float32).eps, err_msg=key)
