"""Tuning the encoder's last layer in numpy (encoder/last_layer.py): gradients against finite differences, the layer
as the encoder runs it (BERT and MPNet, numpy and onnxruntime), torch's AdamW step, and tuning that learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoder import last_layer, layer_pass
from encoder.last_layer import Encoding, Settings
from encoder.sentence_encoder import SentenceEncoder
from encoder.tuned import Frozen
from tests.unit.test_mpnet import HEADS, TEXTS, tiny_mpnet
from tests.unit.test_sentence_encoder import tiny_dir  # noqa: F401  (fixture)

DIM, FFN, LENGTHS = 8, 16, (5, 3, 4)
TOY = {  # a toy intent set the tiny encoder can read: intent number -> examples
    0: ["where is my order", "my order is where", "where is it, my order?"],
    1: ["cafe", "un cafe", "a cafe?"],
    2: ["a123", "my a123", "a123, a123?"],
    3: ["unknown", "is it unknown", "unknown order?"],
}


def toy(examples: dict[int, list[str]]) -> tuple[list[str], np.ndarray]:
    """The examples' texts, and their intent numbers."""
    return [text for group in examples.values() for text in group], np.array(
        [intent for intent, group in examples.items() for _ in group]
    )


def random_layer(rng: np.random.Generator) -> last_layer.Params:
    shapes = {
        "qkv": (DIM, 3 * DIM),
        "qkv_bias": (3 * DIM,),
        "out": (DIM, DIM),
        "out_bias": (DIM,),
        "norm1.weight": (DIM,),
        "norm1.bias": (DIM,),
        "up": (DIM, FFN),
        "up_bias": (FFN,),
        "down": (FFN, DIM),
        "down_bias": (DIM,),
        "norm2.weight": (DIM,),
        "norm2.bias": (DIM,),
    }
    layer = {name: rng.normal(0, 0.5, shape) for name, shape in shapes.items()}
    layer["norm1.weight"] += 1.0
    layer["norm2.weight"] += 1.0
    return layer


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "real tokens only"])
@pytest.mark.parametrize(
    ("labels", "background"),
    [([0, 2, 1], ("uniform", 1.0)), ([0, -1, 1, -1], ("uniform", 0.7)), ([2, -1, 0, -1], ("energy", 1.3))],
    ids=["intents", "strangers uniform", "strangers energy"],
)
def test_the_gradients_are_the_losss_slopes(labels: list[int], background: tuple[str, float], packed: bool) -> None:
    rng = np.random.default_rng(0)
    params = random_layer(rng)
    lengths = (*LENGTHS, 2)[: len(labels)]
    x, mask = last_layer.pad([rng.normal(0, 1, (n, DIM)) for n in lengths])
    bias = layer_pass.attention_bias(mask, rng.normal(0, 1, (2, max(lengths), max(lengths))))
    labels = np.array(labels)
    prototypes = rng.normal(0, 1, (3, DIM))
    real = mask if packed else None

    def loss(params: last_layer.Params, prototypes: np.ndarray) -> float:
        hidden, _ = layer_pass.layer_forward(x, bias, params, 2, 1e-5, real)
        vectors = layer_pass.pool_forward(hidden, mask)[0]
        return last_layer.proto_loss(vectors, labels, prototypes, 5.0, *background)[0]

    hidden, cache = layer_pass.layer_forward(x, bias, params, 2, 1e-5, real)
    vectors, pooled = layer_pass.pool_forward(hidden, mask)
    _, grad_vectors, grad_prototypes = last_layer.proto_loss(vectors, labels, prototypes, 5.0, *background)
    grads = layer_pass.layer_backward(layer_pass.pool_backward(grad_vectors, pooled), cache, params)
    assert set(grads) == set(params)
    step = 1e-6
    for name, value in [*params.items(), ("prototypes", prototypes)]:
        analytic = grad_prototypes if name == "prototypes" else grads[name]
        for flat_index in rng.choice(value.size, size=min(6, value.size), replace=False):
            where = np.unravel_index(flat_index, value.shape)
            saved = value[where]
            value[where] = saved + step
            up = loss(params, prototypes)
            value[where] = saved - step
            down = loss(params, prototypes)
            value[where] = saved
            assert analytic[where] == pytest.approx((up - down) / (2 * step), rel=1e-4, abs=1e-7), (name, where)


def step_case(seed: int) -> tuple[list[np.ndarray], np.ndarray, last_layer.Params, np.ndarray, Encoding]:
    """A step's states of seven lengths (two strangers among them), labels, a random layer, prototypes, encoding."""
    rng = np.random.default_rng(seed)
    params = random_layer(rng)
    states = [rng.normal(0, 1, (n, DIM)) for n in (5, 3, 4, 7, 2, 6, 3)]
    labels, prototypes = np.array([0, 1, -1, 0, 1, 2, -1]), rng.normal(0, 1, (3, DIM))
    return states, labels, params, prototypes, Encoding(2, 1e-5)


def test_a_step_in_chunks_has_the_gradients_of_one_batch() -> None:
    states, labels, params, prototypes, encoding = step_case(2)
    whole = last_layer.step_gradients(states, labels, params, prototypes, encoding, 5.0, 10**9, ("energy", 0.5))
    chunked = last_layer.step_gradients(states, labels, params, prototypes, encoding, 5.0, 8, ("energy", 0.5))
    assert chunked[0] == pytest.approx(whole[0], rel=1e-12)
    for name, grad in whole[1].items():
        np.testing.assert_allclose(chunked[1][name], grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(chunked[2], whole[2], rtol=1e-9, atol=1e-12)


def test_the_real_tokens_alone_give_the_padded_batchs_outputs_and_gradients() -> None:
    rng = np.random.default_rng(4)
    params = random_layer(rng)
    x, mask = last_layer.pad([rng.normal(0, 1, (n, DIM)) for n in (5, 2, 4, 1)])
    x[mask == 0] = rng.normal(0, 1, (int((mask == 0).sum()), DIM))  # padding that is not zero must not leak in
    bias = layer_pass.attention_bias(mask, rng.normal(0, 1, (2, 5, 5)))
    padded, padded_cache = layer_pass.layer_forward(x, bias, params, 2, 1e-5)
    packed, packed_cache = layer_pass.layer_forward(x, bias, params, 2, 1e-5, mask)
    np.testing.assert_allclose(packed[mask == 1], padded[mask == 1], rtol=1e-9, atol=1e-12)
    assert not packed[mask == 0].any()
    grad_out = rng.normal(0, 1, x.shape) * mask[:, :, None]
    want = layer_pass.layer_backward(grad_out, padded_cache, params)
    found = layer_pass.layer_backward(grad_out, packed_cache, params)
    assert found.keys() == want.keys()
    for name, grad in want.items():
        np.testing.assert_allclose(found[name], grad, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("rows", [3, 255, 1001], ids=lambda rows: f"{rows} rows")
def test_gelu_and_its_slope_are_the_same_in_row_blocks_as_in_one(rows: int) -> None:
    from scipy.special import erf

    x = np.random.default_rng(5).normal(0, 2, (rows, 12)).astype(np.float32)
    cdf = 0.5 * (1.0 + erf(x.astype(np.float64) / np.sqrt(2.0)))
    out, found_cdf = layer_pass.gelu(x)
    np.testing.assert_allclose(found_cdf, cdf, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out, x * cdf, rtol=1e-6, atol=1e-7)
    slope = cdf + x * np.exp(-0.5 * x.astype(np.float64) ** 2) / np.sqrt(2.0 * np.pi)
    np.testing.assert_allclose(layer_pass.gelu_slope(x, found_cdf), slope, rtol=1e-5, atol=1e-6)


def test_chunks_hold_every_state_once_within_the_padded_tokens() -> None:
    states = [np.zeros((n, DIM)) for n in (5, 3, 4, 7, 2, 6, 3, 9)]
    found = last_layer.chunks(states, 12)
    assert sorted(i for chunk in found for i in chunk) == list(range(len(states)))
    assert all(len(chunk) * max(len(states[i]) for i in chunk) <= 12 for chunk in found if len(chunk) > 1)
    assert found == [[4, 1, 6], [2, 0], [5], [3], [7]]  # shortest first, each as full as the tokens allow


def test_every_intent_number_needs_an_example(tiny_dir: Path) -> None:  # noqa: F811
    encoder = SentenceEncoder.load(tiny_dir, heads=2, backend="numpy")
    states = Frozen(encoder).states(["cafe", "where is my order"])
    with pytest.raises(ValueError, match="needs an example"):
        last_layer.tune(states, np.array([0, 2]), encoder.layers[-1], last_layer.encoding_of(encoder), Settings())


def test_padding_changes_nothing() -> None:
    rng = np.random.default_rng(1)
    params = {name: value.astype(np.float32) for name, value in random_layer(rng).items()}
    states = [rng.normal(0, 1, (n, DIM)).astype(np.float32) for n in LENGTHS]
    encoding = Encoding(2, 1e-12)
    together = last_layer.embed(states, params, encoding)
    alone = np.vstack([last_layer.embed([s], params, encoding) for s in states])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "onnxruntime"])
def test_the_layer_is_the_encoders_last(tiny_dir: Path, tmp_path: Path, backend: str) -> None:  # noqa: F811
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    for directory, heads in ((tiny_dir, 2), (tiny_mpnet(tmp_path), HEADS)):
        encoder = SentenceEncoder.load(directory, heads=heads, backend=backend)
        layer = encoder.layers[-1]
        states = Frozen(encoder, backend=backend).states(TEXTS)
        vectors = last_layer.embed(states, last_layer.flat(layer), last_layer.encoding_of(encoder))
        np.testing.assert_allclose(vectors, encoder.encode(TEXTS), atol=2e-5)
        assert last_layer.nested(last_layer.flat(layer)).keys() == layer.keys()


def test_adamw_steps_as_torch_does() -> None:
    # First step: the bias-corrected moments are g and g squared, so the step is lr (weight decay first).
    params = {"p": np.array([1.0, -2.0])}
    optimizer = last_layer.AdamW({"p": 0.1}, weight_decay=0.01)
    optimizer.step(params, {"p": np.array([0.5, -3.0])})
    np.testing.assert_allclose(params["p"], [1.0 * 0.999 - 0.1, -2.0 * 0.999 + 0.1], atol=1e-7)
    # Second step, by hand: m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2, each divided by its correction.
    optimizer.step(params, {"p": np.array([0.5, 1.0])})
    first = np.array([0.9 * 0.05 + 0.05, 0.9 * -0.3 + 0.1]) / (1 - 0.81)
    second = np.array([0.999 * 0.00025 + 0.00025, 0.999 * 0.009 + 0.001]) / (1 - 0.999**2)
    expected = np.array([0.899, -1.898]) * 0.999 - 0.1 * first / (np.sqrt(second) + 1e-8)
    np.testing.assert_allclose(params["p"], expected, atol=1e-6)


def test_tuning_learns_the_intents_and_leaves_the_encoder_alone(tiny_dir: Path) -> None:  # noqa: F811
    encoder = SentenceEncoder.load(tiny_dir, heads=2, backend="numpy")
    examples = TOY
    texts, labels = toy(examples)
    states = Frozen(encoder).states(texts)
    before = {name: value.copy() for name, value in last_layer.flat(encoder.layers[-1]).items()}
    settings = Settings(epochs=30, lr=1e-2, head_lr=1e-2, intents=2, scale=10.0)
    tuned, losses = last_layer.tune(states, labels, encoder.layers[-1], last_layer.encoding_of(encoder), settings)
    assert len(losses) == 30 * 2
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    for name, value in last_layer.flat(encoder.layers[-1]).items():
        np.testing.assert_array_equal(value, before[name])
    vectors = last_layer.embed(states, last_layer.flat(tuned), last_layer.encoding_of(encoder))
    centroids = np.vstack([vectors[labels == c].mean(0) for c in examples])
    assert ((vectors @ centroids.T).argmax(1) == labels).all()
    again, _ = last_layer.tune(states, labels, encoder.layers[-1], last_layer.encoding_of(encoder), settings)
    for name, value in last_layer.flat(tuned).items():
        np.testing.assert_array_equal(last_layer.flat(again)[name], value)


def test_a_stranger_loss_by_hand() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    prototypes = np.array([[2.0, 0.0], [0.0, 3.0]])  # unit after normalising: the cosines are the vectors' entries
    labels = np.array([0, -1])
    known = np.log(1 + np.exp(-2.0))  # row 0: logits (2, 0), label 0
    uniform = np.log(1 + np.exp(2.0)) - 1.0  # row 1: logits (0, 2); log-sum-exp minus their mean
    energy = np.log(1 + np.exp(2.0)) / 2.0
    for background, stranger in (("uniform", uniform), ("energy", energy)):
        loss, _, _ = last_layer.proto_loss(vectors, labels, prototypes, 2.0, background, 0.5)
        assert loss == pytest.approx((known + 0.5 * stranger) / 2)
    with pytest.raises(ValueError, match="unknown background loss"):
        last_layer.proto_loss(vectors, labels, prototypes, 2.0, "other")


def test_tuning_with_strangers_takes_them_in_turn_and_pushes_them_away(tiny_dir: Path) -> None:  # noqa: F811
    encoder = SentenceEncoder.load(tiny_dir, heads=2, backend="numpy")
    texts, labels = ["where is my order", "my order is where", "cafe", "un cafe"], np.array([0, 0, 1, 1])
    states, strangers = Frozen(encoder).states(texts), Frozen(encoder).states(["unknown", "is it unknown", "a123"])
    encoding = last_layer.encoding_of(encoder)
    seen: list[int] = []
    original = last_layer.step_gradients

    def counting(rows: list, labels: np.ndarray, *args: object, **kwargs: object) -> object:
        seen.append(len({id(row) for row, label in zip(rows, labels) if label < 0}))  # distinct strangers
        return original(rows, labels, *args, **kwargs)

    settings = Settings(epochs=20, lr=1e-2, head_lr=1e-2, intents=2, scale=10.0, background="uniform")
    try:
        last_layer.step_gradients = counting
        tuned, _ = last_layer.tune(states, labels, encoder.layers[-1], encoding, settings, strangers)
    finally:
        last_layer.step_gradients = original
    assert seen == [3] * 20  # 16 a step asked, 3 there: each step has all three, none twice
    plain, _ = last_layer.tune(states, labels, encoder.layers[-1], encoding, settings)

    def nearest(layer: dict) -> float:
        vectors = last_layer.embed(states + strangers, last_layer.flat(layer), encoding)
        return float((vectors[4:] @ vectors[:4].T).max(1).mean())

    assert nearest(tuned) < nearest(plain)


def test_strangers_come_in_turn_none_twice_in_a_group() -> None:
    groups = last_layer._cycle(5, 2, np.random.default_rng(0))
    drawn = [next(groups).tolist() for _ in range(50)]
    assert all(len(group) == len(set(group)) == 2 for group in drawn)
    for end in range(1, 51):  # taken in turn, not sampled: no index ever more than 2 uses ahead of another
        counts = np.bincount(np.concatenate(drawn[:end]), minlength=5)
        assert counts.max() - counts.min() <= 2, (end, counts)
    assert next(last_layer._cycle(3, 16, np.random.default_rng(0))).tolist() != []
    assert next(last_layer._cycle(0, 16, np.random.default_rng(0))).tolist() == []
