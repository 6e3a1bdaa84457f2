"""The encoder's transformer layers as an ONNX graph run by onnxruntime: the numpy forward pass's weights and vectors,
several times faster on 2 cores.

`SentenceEncoder` (encoder.sentence_encoder) uses it when `onnx` and `onnxruntime` can be imported (both
environments: requirements/app.in, and rasa.in with the last releases for Python 3.10) and its numpy forward pass
otherwise. `FRONTLINE_ENCODER_BACKEND` chooses otherwise: `numpy` forces numpy (for comparisons), `onnxruntime` makes
a missing onnxruntime an error instead of a silent fallback; unset or `auto` picks as above.

The graph is built in memory at load time, with `onnx.helper`, from the weights `SentenceEncoder` has read: nothing
is downloaded or converted, and nothing is written to disk. It holds the transformer layers only: the token embeddings
(a table of 30k to 250k rows) are looked up and summed by numpy as before and come in as `embeddings`, so that the
table is not held twice; pooling and normalising stay numpy's too. Per layer it uses onnxruntime's fused CPU kernels
(the `com.microsoft` domain): `Attention` (the query/key/value product, the masked softmax and the weighted sum in
one), `SkipLayerNormalization` (residual, bias and LayerNorm) and `BiasGelu` (the exact, erf GELU), between plain
`MatMul`s, the same arithmetic as the numpy code in float32. The session runs with every graph optimization on,
one intra-op thread per core and no spinning between operators (the machine is shared with the app's event loop
and Rasa).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

ENVIRONMENT = "FRONTLINE_ENCODER_BACKEND"
NUMPY, ONNXRUNTIME = "numpy", "onnxruntime"
OPSET = 17  # LayerNormalization
EPSILON = 1e-12  # BERT's LayerNorm epsilon, as in encoder.sentence_encoder._layer_norm


def choose_backend(requested: str | None = None) -> str:
    """`numpy` or `onnxruntime`: `requested` (else `$FRONTLINE_ENCODER_BACKEND`, else `auto`) resolved."""
    requested = (requested or os.environ.get(ENVIRONMENT) or "auto").strip().lower()
    if requested == NUMPY:
        return NUMPY
    if requested not in ("auto", ONNXRUNTIME):
        raise ValueError(f"{ENVIRONMENT}={requested!r} is none of 'numpy', 'onnxruntime', 'auto'")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        if requested == ONNXRUNTIME:
            raise
        return NUMPY
    return ONNXRUNTIME


def build_model(
    embedding_norm: tuple[np.ndarray, np.ndarray],
    layers: list[dict[str, Any]],
    heads: int,
    dimension: int,
    epsilon: float = EPSILON,
    position_bias: bool = False,
) -> Any:
    """The ONNX model (an `onnx.ModelProto`): `embeddings` (batch, length, dimension; the summed token, position and
    type embeddings) and `mask` (batch, length; int32, 1 for a token and 0 for padding) -> `hidden` (batch, length,
    dimension), the last layer's output. `layers` are `SentenceEncoder.layers` (matrices as x @ matrix). With
    `position_bias` (MPNet) a third input, `position_bias` (1, heads, length, length), is added to every layer's
    attention scores."""
    from onnx import TensorProto, helper, numpy_helper

    initializers, nodes = [], []

    def weight(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, fused: bool = False, **attributes: Any) -> str:
        domain = "com.microsoft" if fused else None
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attributes))
        return output

    x = node(
        "LayerNormalization",
        [
            "embeddings",
            weight("embeddings.norm.weight", embedding_norm[0]),
            weight("embeddings.norm.bias", embedding_norm[1]),
        ],
        "embeddings.normed",
        axis=-1,
        epsilon=epsilon,
    )
    bias_inputs = ["", "position_bias"] if position_bias else []  # Attention's inputs 4 and 5: past, bias
    for index, layer in enumerate(layers):
        p = f"layer{index}."
        qkv = [weight(p + "qkv", layer["qkv"]), weight(p + "qkv_bias", layer["qkv_bias"])]
        context = node("Attention", [x, *qkv, "mask", *bias_inputs], p + "context", fused=True, num_heads=heads)
        attended = node("MatMul", [context, weight(p + "out", layer["out"])], p + "attended")
        norm1 = [weight(p + "norm1.weight", layer["norm1"][0]), weight(p + "norm1.bias", layer["norm1"][1])]
        x = node(
            "SkipLayerNormalization",
            [attended, x, *norm1, weight(p + "out_bias", layer["out_bias"])],
            p + "x1",
            fused=True,
            epsilon=epsilon,
        )
        up = node("MatMul", [x, weight(p + "up", layer["up"])], p + "up_out")
        hidden = node("BiasGelu", [up, weight(p + "up_bias", layer["up_bias"])], p + "gelu", fused=True)
        down = node("MatMul", [hidden, weight(p + "down", layer["down"])], p + "down_out")
        norm2 = [weight(p + "norm2.weight", layer["norm2"][0]), weight(p + "norm2.bias", layer["norm2"][1])]
        x = node(
            "SkipLayerNormalization",
            [down, x, *norm2, weight(p + "down_bias", layer["down_bias"])],
            p + "x2",
            fused=True,
            epsilon=epsilon,
        )
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    graph = helper.make_graph(
        nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "length", dimension]),
            helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "length"]),
            *(
                [helper.make_tensor_value_info("position_bias", TensorProto.FLOAT, [1, heads, "length", "length"])]
                if position_bias
                else []
            ),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", dimension])],
        initializers,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="frontline encoder.onnx_forward")


class OnnxForward:
    """The transformer layers in an onnxruntime session: `forward(embeddings, mask)` -> the last hidden states."""

    def __init__(self, model: Any, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or cores()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # warnings about the CPU's features are not ours to act on
        self.session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def of(cls, encoder: Any, threads: int | None = None, layers: list[dict[str, Any]] | None = None) -> OnnxForward:
        """The session for a `SentenceEncoder`'s loaded weights (`layers`: some of its layers, all by default)."""
        architecture = encoder.architecture
        model = build_model(
            encoder.embedding_norm,
            encoder.layers if layers is None else layers,
            encoder.heads,
            encoder.dimension,
            architecture.epsilon,
            architecture.relative_bias is not None,
        )
        return cls(model, threads)

    def forward(self, embeddings: np.ndarray, mask: np.ndarray, position_bias: np.ndarray | None = None) -> np.ndarray:
        feed = {"embeddings": np.ascontiguousarray(embeddings, dtype=np.float32), "mask": mask.astype(np.int32)}
        if position_bias is not None:
            feed["position_bias"] = np.ascontiguousarray(position_bias[None], dtype=np.float32)
        return self.session.run(["hidden"], feed)[0]


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
