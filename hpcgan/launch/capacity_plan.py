"""`hpcgan plan`'s arithmetic: from a preset's counted FLOPs per image, a GPU's published peak and an
assumed model-FLOP utilisation (MFU) to images/s, sec/kimg and GPU-hours; then what else the run
costs: the gradient all-reduce, the data rate, the shard count, checkpoints and FID-50k.

Each figure carries where it comes from: measured (counted or timed here), published (a datasheet),
assumed (a stated default the user can override) or projected (arithmetic on the others).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpcgan.errors import UserError
from hpcgan.launch.gpu_specs import GpuSpec

if TYPE_CHECKING:  # torch stays out of the CLI's start (`hpcgan status` must not load it)
    from hpcgan.train.step_flops import StepFlops

# Why 0.15: StyleGAN2-ADA's published V100 timings imply 0.14-0.18 of the fp16 tensor peak on 1-4 GPUs
# (hpcgan/launch/capacity_plan_calibration.py, docs/scaling.md), with NVIDIA's hand-written CUDA ops.
# R3GAN's grouped 3x3 convolutions use tensor cores less well than dense ones, so read this as optimistic.
DEFAULT_MFU = 0.15
DEFAULT_INTERCONNECT_GBPS = 200.0  # between nodes, Gbit/s per node: one InfiniBand HDR port
DEFAULT_FS_GB_S = 1.0  # GB/s one node reads from (or writes to) a shared Lustre/GPFS file system
DEFAULT_GPUS_PER_NODE = 8
FID_IMAGES = 50_000

# Bytes per image in a shard (the image member plus the tar headers and label of a sample), measured
# on 60 Kermany chest X-rays resized to the side and encoded as `hpcgan shard` does: PNG 32.6 KiB at
# 256 px and 118.3 KiB at 512 px, JPEG q95 20.2 and 68.4 KiB. Other sides: scaled by pixel count.
TAR_OVERHEAD = 1536  # a 512-byte header per member (image, label) and the padding of the small label
MEASURED_KIB = {("png", 256): 32.6, ("png", 512): 118.3, ("jpeg", 256): 20.2, ("jpeg", 512): 68.4}
# Images/s one loader worker decodes (positioned tar reads, decode, to uint8), measured on this
# project's 2-core CPU with 2 workers (python -m hpcgan.bench loader; ../notes), lower end per worker.
DECODE_PER_WORKER = {("png", 256): 350.0, ("png", 512): 150.0, ("jpeg", 256): 360.0, ("jpeg", 512): 140.0,
                     ("raw", 256): 600.0, ("raw", 512): 410.0}  # fmt: skip


def ring_allreduce_bytes(gradient_bytes: float, ranks: int) -> float:
    """Bytes each rank sends (and receives) in a ring all-reduce: reduce-scatter then all-gather,
    each moving (n-1)/n of the buffer."""
    return 0.0 if ranks <= 1 else 2 * (ranks - 1) / ranks * gradient_bytes


def gpu_hours(kimg: float, sec_per_kimg: float, gpus: int) -> float:
    return kimg * sec_per_kimg * gpus / 3600


def bytes_per_image(fmt: str, size: int) -> float:
    if fmt == "raw":
        return size * size + TAR_OVERHEAD
    measured = MEASURED_KIB.get((fmt, size))
    if measured is None:  # scale the 512 px measurement by the pixel count
        measured = MEASURED_KIB[(fmt, 512)] * (size / 512) ** 2
    return measured * 1024 + TAR_OVERHEAD


def decode_rate(fmt: str, size: int) -> float:
    """Images/s per loader worker. Above 256 px the 512 px rate scales with the pixel count; below, a
    sample's fixed costs (tar read, batch assembly) dominate, so the 256 px rate stands."""
    known = DECODE_PER_WORKER.get((fmt, size))
    if known is not None:
        return known
    return DECODE_PER_WORKER[(fmt, 256)] if size < 256 else DECODE_PER_WORKER[(fmt, 512)] * (512 / size) ** 2


@dataclass(frozen=True)
class PlanSettings:
    kimg: float
    gpus: int
    gpu: GpuSpec
    precision: str  # fp32 | bf16 | fp16: the run's autocast dtype on a GPU
    batch: int  # train.batch_size: images per rank per step
    workers: int  # train.num_workers: loader processes per rank
    mfu: float = DEFAULT_MFU
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE
    interconnect_gbps: float = DEFAULT_INTERCONNECT_GBPS
    fs_gb_s: float = DEFAULT_FS_GB_S
    image_format: str = "png"
    image_bytes: float = 0.0  # 0: from the measured table for image_format and the side
    dataset_images: int = FID_IMAGES  # real images: FID's real statistics, the shard size

    def check(self) -> None:
        if self.gpus < 1:
            raise UserError(f"--gpus {self.gpus}: expected a whole number >= 1")
        if not 0 < self.mfu <= 1:
            raise UserError(f"--mfu {self.mfu}: expected a fraction in (0, 1]")
        if self.kimg <= 0:
            raise UserError(f"--kimg {self.kimg}: expected a number > 0")
        for flag, value in (("--gpus-per-node", self.gpus_per_node), ("--interconnect-gbps", self.interconnect_gbps),
                            ("--fs-gbs", self.fs_gb_s), ("--dataset-images", self.dataset_images)):  # fmt: skip
            if not value > 0:
                raise UserError(f"{flag} {value}: expected a number > 0")


@dataclass(frozen=True)
class Plan:
    settings: PlanSettings
    flops: StepFlops
    resolution: int
    inception_flops: float
    checkpoint_bytes: float

    @property
    def unit(self) -> str:
        """The tensor-core format the run's precision computes in on this GPU."""
        return self.settings.gpu.peak(self.settings.precision)[1]

    @property
    def peak_flops(self) -> float:
        return self.settings.gpu.peak(self.settings.precision)[0] * 1e12

    # -- compute ----------------------------------------------------------------------------------
    @property
    def images_per_s_per_gpu(self) -> float:
        """Compute only: MFU x peak / FLOPs per image."""
        return self.settings.mfu * self.peak_flops / self.flops.per_image

    @property
    def images_per_step(self) -> int:
        """Real images per rank per step (D sees batch x d_steps of them)."""
        return self.settings.batch * self.flops.d_steps

    @property
    def compute_s_per_step(self) -> float:
        return self.images_per_step / self.images_per_s_per_gpu

    # -- the all-reduce ---------------------------------------------------------------------------
    @property
    def gradient_bytes_per_step(self) -> float:
        """fp32: under autocast the parameters, and so their gradients, stay fp32, and DDP reduces those.
        D's gradients are reduced after each of its d_steps updates, G's after each of g_steps."""
        f = self.flops
        return 4.0 * (f.d_params * f.d_steps + f.g_params * f.g_steps)

    @property
    def link_gb_s(self) -> float:
        """One direction of the slowest link in the ring: the GPU's own link within a node, the
        node's network port across nodes."""
        s = self.settings
        inside = s.gpu.link_gb_s / 2
        return inside if s.gpus <= s.gpus_per_node else min(inside, s.interconnect_gbps / 8)

    @property
    def allreduce_s_per_step(self) -> float:
        return ring_allreduce_bytes(self.gradient_bytes_per_step, self.settings.gpus) / (self.link_gb_s * 1e9)

    @property
    def step_s(self) -> float:
        """Compute plus the all-reduce, not overlapped: DDP overlaps its buckets with the backward, so
        the truth lies between compute_s_per_step and this."""
        return self.compute_s_per_step + self.allreduce_s_per_step

    @property
    def allreduce_share(self) -> float:
        """Of the step at the planned rate (which a data limit may slow below compute + all-reduce)."""
        return self.allreduce_s_per_step * self.images_per_s_per_gpu_planned / self.images_per_step

    # -- data -------------------------------------------------------------------------------------
    @property
    def image_bytes(self) -> float:
        s = self.settings
        return s.image_bytes or bytes_per_image(s.image_format, self.resolution)

    @property
    def gpus_on_a_node(self) -> int:
        return min(self.settings.gpus, self.settings.gpus_per_node)

    @property
    def trained_images_per_s_per_gpu(self) -> float:
        """Compute and all-reduce, before any data limit."""
        return self.images_per_step / self.step_s

    @property
    def fs_limit_per_gpu(self) -> float:
        return self.settings.fs_gb_s * 1e9 / self.image_bytes / self.gpus_on_a_node

    @property
    def decode_limit_per_gpu(self) -> float:
        s = self.settings
        return max(s.workers, 1) * decode_rate(s.image_format, self.resolution)

    @property
    def workers_needed(self) -> int:
        """Loader workers per rank that decode as fast as the GPU trains."""
        rate = min(self.trained_images_per_s_per_gpu, self.fs_limit_per_gpu)
        return math.ceil(rate / decode_rate(self.settings.image_format, self.resolution))

    @property
    def images_per_s_per_gpu_planned(self) -> float:
        return min(self.trained_images_per_s_per_gpu, self.fs_limit_per_gpu, self.decode_limit_per_gpu)

    @property
    def bottleneck(self) -> str:
        rate = self.images_per_s_per_gpu_planned
        if rate == self.fs_limit_per_gpu and rate < self.trained_images_per_s_per_gpu:
            return "file system"
        if rate == self.decode_limit_per_gpu and rate < self.trained_images_per_s_per_gpu:
            return "decoding (loader workers)"
        # Not overlapped, an all-reduce at 10% of the step costs 10% of the speed; past half, it sets the pace.
        if self.allreduce_share >= 0.5:
            return "all-reduce"
        return "compute + all-reduce" if self.allreduce_share >= 0.1 else "compute"

    @property
    def node_data_gb_s(self) -> float:
        """What one node's GPUs read at the planned rate."""
        return self.images_per_s_per_gpu_planned * self.gpus_on_a_node * self.image_bytes / 1e9

    # -- the run ----------------------------------------------------------------------------------
    @property
    def images_per_s(self) -> float:
        return self.images_per_s_per_gpu_planned * self.settings.gpus

    @property
    def sec_per_kimg(self) -> float:
        return 1000 / self.images_per_s

    @property
    def wall_hours(self) -> float:
        return self.settings.kimg * self.sec_per_kimg / 3600

    @property
    def gpu_hours(self) -> float:
        return gpu_hours(self.settings.kimg, self.sec_per_kimg, self.settings.gpus)

    @property
    def shards_min(self) -> int:
        """The loader deals whole shards to ranks; with fewer shards than ranks every rank reads every shard."""
        return self.settings.gpus

    @property
    def shards_recommended(self) -> int:
        """world size x workers, webdataset's rule: shards also balance within one shard of the mean."""
        return self.settings.gpus * max(self.settings.workers, 1)

    @property
    def shard_size_images(self) -> int:
        return max(1, self.settings.dataset_images // self.shards_recommended)

    @property
    def checkpoint_write_s(self) -> float:
        return self.checkpoint_bytes / (self.settings.fs_gb_s * 1e9)

    def _fid_seconds(self, real_images: int) -> float:
        """50k generated images (G forward and Inception) and `real_images` through Inception, over all
        GPUs at the plan's MFU, in fp32 (TF32 where the GPU has it)."""
        peak, _ = self.settings.gpu.peak("fp32")
        flops = FID_IMAGES * (self.flops.g_forward + self.inception_flops) + real_images * self.inception_flops
        return flops / (self.settings.gpus * self.settings.mfu * peak * 1e12)

    @property
    def fid_seconds(self) -> float:
        """FID-50k the first time: the real images' statistics too (cached afterwards)."""
        return self._fid_seconds(self.settings.dataset_images)

    @property
    def fid_seconds_cached(self) -> float:
        return self._fid_seconds(0)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1000
    return f"{n:.3g} TB"


def human_seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.3g} ms"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 172800:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} d"
