"""Published peak throughput of the GPUs `hpcgan plan` knows: dense tensor-core TFLOP/s (no 2:4
sparsity), as each vendor datasheet states them, and the GPU-to-GPU link within a node.

Sources (the vendor datasheets, checked November 2026):
- v100: NVIDIA Tesla V100 datasheet (SXM2): 15.7 FP32, 125 tensor (FP16); no TF32 or BF16 units;
  NVLink 300 GB/s.
- a100: NVIDIA A100 datasheet (SXM4): 19.5 FP32, 156 TF32, 312 BF16/FP16; NVLink 600 GB/s.
- h100: NVIDIA H100 datasheet (SXM5): 67 FP32, 494.7 TF32, 989.4 BF16/FP16 (the datasheet prints the
  sparse figures, twice these); NVLink 900 GB/s.
- l40s: NVIDIA L40S datasheet: 91.6 FP32, 183 TF32, 362.05 BF16/FP16; PCIe Gen4 x16 (64 GB/s both ways).
- a10: NVIDIA A10 datasheet: 31.2 FP32, 62.5 TF32, 125 BF16/FP16; PCIe Gen4 x16.
Link figures are both directions together, as datasheets print them; a ring sends one way at a time,
so the plan uses half.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcgan.errors import UserError


@dataclass(frozen=True)
class GpuSpec:
    name: str
    fp32: float  # TFLOP/s, plain FP32
    tf32: float  # TFLOP/s, TF32 tensor cores (0: none): what cuDNN uses for fp32 convolutions by default
    bf16: float  # TFLOP/s (0: no bf16 units)
    fp16: float  # TFLOP/s, fp16 tensor cores
    link_gb_s: float  # GPU-to-GPU within a node, GB/s both directions (NVLink or PCIe)
    link: str

    def peak(self, precision: str) -> tuple[float, str]:
        """(TFLOP/s, the unit that delivers it) for a training precision: fp32 runs its convolutions
        in TF32 where the GPU has it (cuDNN's default); bf16 falls back to fp16 where there is no bf16."""
        if precision == "fp32":
            return (self.tf32, "tf32") if self.tf32 else (self.fp32, "fp32")
        if precision == "bf16" and self.bf16:
            return self.bf16, "bf16"
        return self.fp16, "fp16"


GPUS: dict[str, GpuSpec] = {
    "v100": GpuSpec("v100", fp32=15.7, tf32=0.0, bf16=0.0, fp16=125.0, link_gb_s=300.0, link="NVLink 2"),
    "a100": GpuSpec("a100", fp32=19.5, tf32=156.0, bf16=312.0, fp16=312.0, link_gb_s=600.0, link="NVLink 3"),
    "h100": GpuSpec("h100", fp32=67.0, tf32=494.7, bf16=989.4, fp16=989.4, link_gb_s=900.0, link="NVLink 4"),
    "l40s": GpuSpec("l40s", fp32=91.6, tf32=183.0, bf16=362.05, fp16=362.05, link_gb_s=64.0, link="PCIe Gen4 x16"),
    "a10": GpuSpec("a10", fp32=31.2, tf32=62.5, bf16=125.0, fp16=125.0, link_gb_s=64.0, link="PCIe Gen4 x16"),
}


def gpu(name: str) -> GpuSpec:
    if name.lower() not in GPUS:
        raise UserError(f"--gpu {name}: unknown GPU; known: {', '.join(GPUS)}")
    return GPUS[name.lower()]
