"""ONNX Runtime operators that live in the standard ONNX domain without being ONNX operators.

ORT registers SimplifiedLayerNormalization (RMSNorm) in the default domain, and ONNX Runtime
GenAI's model builder emits it there, so the stock ONNX checker refuses every model the builder
writes ("No Op registered for SimplifiedLayerNormalization"). Registering ORT's own signature for
it lets the checker verify everything else in the graph instead of giving up. Operators in the
com.microsoft domain need nothing: the checker skips domains it does not know.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
FLOATS = ("tensor(float)", "tensor(float16)", "tensor(bfloat16)", "tensor(double)")


def register_ort_schemas() -> None:
    import onnx.defs
    from onnx.defs import OpSchema

    with _lock:
        if onnx.defs.has("SimplifiedLayerNormalization", ""):
            return
        # The signature of onnxruntime/core/graph/contrib_ops (SimplifiedLayerNormalization, since 1).
        schema = OpSchema(
            "SimplifiedLayerNormalization", "", 1,
            doc="RMS normalization (ONNX Runtime operator in the ONNX domain).",
            inputs=[OpSchema.FormalParameter("X", "T"), OpSchema.FormalParameter("scale", "V")],
            outputs=[OpSchema.FormalParameter("Y", "V"),
                     OpSchema.FormalParameter("inv_std_var", "U",
                                              param_option=OpSchema.FormalParameterOption.Optional)],
            type_constraints=[("T", FLOATS, "input"), ("U", ("tensor(float)", "tensor(double)"), "statistics"),
                              ("V", FLOATS, "scale and output")],
            attributes=[OpSchema.Attribute("axis", OpSchema.AttrType.INT, "normalized axes start", required=False),
                        OpSchema.Attribute("epsilon", OpSchema.AttrType.FLOAT, "added to the variance",
                                           required=False),
                        OpSchema.Attribute("stash_type", OpSchema.AttrType.INT, "statistics type", required=False)])
        onnx.defs.register_schema(schema)
