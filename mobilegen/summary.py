"""What `inspect` reports: ops, shapes, dtypes, quantization, parameter and byte counts, support."""

from __future__ import annotations

from mobilegen.errors import MobilegenError
from mobilegen.ir.graph import Graph, Tensor
from mobilegen.plan import SUPPORTED_OPS, build_plan


def tensor_info(t: Tensor) -> dict:
    info = {"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype, "constant": t.is_const}
    if t.quant is not None:
        info["quantization"] = t.quant.to_json()
    return info


def summarize(g: Graph) -> dict:
    ops = []
    for op in g.ops:
        consts = [g.tensors[i] for i in op.inputs if i >= 0 and g.tensors[i].is_const]
        ops.append(
            {
                "index": op.index,
                "op": op.opcode,
                "supported": op.opcode in SUPPORTED_OPS,
                "inputs": [tensor_info(g.tensors[i]) for i in op.inputs if i >= 0],
                "outputs": [tensor_info(g.tensors[i]) for i in op.outputs],
                "options": op.options,
                "params": sum(t.size for t in consts),
                "param_bytes": sum(t.nbytes for t in consts),
            }
        )
    unsupported = sorted({o["op"] for o in ops if not o["supported"]})
    support = _support(g) if not unsupported else {"simulate": "unsupported ops", "generate": "unsupported ops"}
    return {
        "inputs": [tensor_info(g.tensors[i]) for i in g.inputs],
        "outputs": [tensor_info(g.tensors[i]) for i in g.outputs],
        "ops": ops,
        "op_counts": _counts(g),
        "params": g.param_count(),
        "param_bytes": g.param_bytes(),
        "activation_bytes": sum(g.tensors[i].nbytes for i in g.written_tensors()),
        "supported": not unsupported and all(v is None for v in support.values()),
        "unsupported_ops": unsupported,
        # per command: None when it accepts the model, else why not (`verify` runs what
        # `generate` wrote, so it accepts exactly what `generate` accepts)
        "support": support,
    }


def _support(g: Graph) -> dict[str, str | None]:
    """Whether `simulate` (the plan) and `generate` (the plan exported for the engine, at the
    model's own precision, and the Android target's own requirements) accept `g`, and the
    one-line reason where not."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.targets.android import check_android_model

    out: dict[str, str | None] = {"simulate": None, "generate": None}
    try:
        build_plan(g)
    except MobilegenError as e:
        return {"simulate": str(e), "generate": str(e)}
    try:
        export_plan(*plan_for_precision(g))
        check_android_model(g)
    except MobilegenError as e:
        out["generate"] = str(e)
    return out


def _counts(g: Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in g.ops:
        counts[op.opcode] = counts.get(op.opcode, 0) + 1
    return counts


def _quant_text(t: dict) -> str:
    q = t.get("quantization")
    if not q:
        return ""
    s, z = q["scale"], q["zero_point"]
    if len(s) == 1:
        return f" s={s[0]:.6g} zp={z[0]}"
    return f" per-channel[{len(s)}] dim {q['quantized_dimension']}"


def _tensor_text(t: dict) -> str:
    kind = "const " if t["constant"] else ""
    return f"{kind}{t['dtype']}{t['shape']}{_quant_text(t)}"


def format_text(s: dict, source: str) -> str:
    lines = [f"model: {source}"]
    for role in ("inputs", "outputs"):
        for t in s[role]:
            lines.append(f"{role[:-1]}: #{t['index']} {t['name']} {_tensor_text(t)}")
    lines.append("")
    lines.append(f"{'#':>3}  {'op':<18} {'ok':<3} {'output':<44} {'params':>9}  inputs")
    for o in s["ops"]:
        out = ", ".join(_tensor_text(t) for t in o["outputs"])
        ins = ", ".join(_tensor_text(t) for t in o["inputs"])
        ok = "yes" if o["supported"] else "NO"
        lines.append(f"{o['index']:>3}  {o['op']:<18} {ok:<3} {out:<44} {o['params']:>9}  {ins}")
    lines.append("")
    counts = ", ".join(f"{k} x{v}" for k, v in s["op_counts"].items())
    lines.append(f"ops: {len(s['ops'])} ({counts})")
    lines.append(f"parameters: {s['params']:,} ({s['param_bytes']:,} bytes); activations: {s['activation_bytes']:,} bytes")
    if s["supported"]:
        lines.append("supported: yes (simulate, generate and verify)")
    elif s["unsupported_ops"]:
        lines.append(f"supported: no (unsupported: {', '.join(s['unsupported_ops'])}; supported ops: {', '.join(SUPPORTED_OPS)})")
    else:
        why = s["support"]
        if why["simulate"] is not None:
            lines.append(f"supported: no: simulate, generate and verify refuse it: {why['simulate']}")
        else:
            lines.append(f"supported: simulate only; generate and verify refuse it: {why['generate']}")
    return "\n".join(lines)
