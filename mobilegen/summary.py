"""What `inspect` reports: ops, shapes, dtypes, quantization, parameter and byte counts, support."""

from __future__ import annotations

from mobilegen.ir.graph import Graph, Tensor
from mobilegen.plan import SUPPORTED_OPS


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
    return {
        "inputs": [tensor_info(g.tensors[i]) for i in g.inputs],
        "outputs": [tensor_info(g.tensors[i]) for i in g.outputs],
        "ops": ops,
        "op_counts": _counts(g),
        "params": g.param_count(),
        "param_bytes": g.param_bytes(),
        "activation_bytes": sum(g.tensors[i].nbytes for i in g.written_tensors()),
        "supported": not unsupported,
        "unsupported_ops": unsupported,
    }


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
        lines.append("supported: yes")
    else:
        lines.append(f"supported: no (unsupported: {', '.join(s['unsupported_ops'])}; supported ops: {', '.join(SUPPORTED_OPS)})")
    return "\n".join(lines)
