"""The built-in decoders, optimizations and commands, registered without importing torch.

Each spec names its implementation by an import string, resolved on first use (decoders in
:mod:`genaccel.decoders`, optimizations in :mod:`genaccel.optimizations`, commands in
:mod:`genaccel.cli`).  The plugin objects are named after what they register, which is what
``genaccel list`` shows as their plugin.
"""

from __future__ import annotations

from .hookspecs import hookimpl
from .options import Option
from .roles import (
    AttentionSwitch,
    BatchRunner,
    BeamSearch,
    ChannelsLast,
    Compilable,
    CUDAGraphable,
    EarlyExit,
    FusedQKV,
    Guided,
    KVCacheDtype,
    KVCacheSwitch,
    LlamaCppReference,
    PipelineReference,
    Quantizable,
    StepCache,
    TokenModel,
    TransformersReference,
    Workload,
)
from .specs import GGUF_PRECISION, DecoderSpec, OptimizationSpec

# --- options shared by several specs (one declaration, so that they are equal) --------------------

TEMPERATURE = Option(name="temperature", type=float, default=0.6, min=0, min_exclusive=True,
                     help="sampling temperature (top-p and guided sampling)")
TOP_P = Option(name="top_p", type=float, default=0.9, min=0, min_exclusive=True, max=1,
               help="nucleus sampling: the smallest token set of this much probability")
TOP_K = Option(name="top_k", type=int, min=1,
               help="guided sampling: draw from the k most likely tokens (default: the workload's; top-p without one)")
EXIT_LAYER = Option(name="exit_layer", type=int, min=1,
                    help="self-speculative: draft with layers [0, E) (default: the checkpoint's saved E, else N/4)")
DRAFT_LEN = Option(name="draft_len", type=int, min=1,
                   help="self-speculative: tokens drafted per cycle (default: the checkpoint's saved k, else 4)")
GUIDANCE_SCALE = Option(name="guidance_scale", type=float, min=0,
                        help="contrastive guidance scale (default: the workload's, 3 for chameleon/t-i)")
SCHEDULER = Option(name="scheduler", type=str, choices=("ddim", "pndm", "dpm-solver", "euler", "ddpm"),
                   help="diffusion scheduler (default: the workload's)")
NUM_INFERENCE_STEPS = Option(name="num_inference_steps", type=int, min=1,
                             help="diffusion denoising steps (default: the workload's)")
CACHE_INTERVAL = Option(name="cache_interval", type=int, default=3, min=1,
                        help="deepcache: run the whole UNet every N-th denoising step (1: every step, lossless)")
NUM_BEAMS = Option(name="num_beams", type=int, default=5, min=1, help="beam search: hypotheses kept")
LENGTH_PENALTY = Option(name="length_penalty", type=float, default=1.0, help="beam search: length penalty")
ALLOW_MISSING_WEIGHTS = Option(name="allow_missing_weights", type=bool, default=False,
                               help="run a --checkpoint that lacks weights (they stay random; the report lists them)")

GUIDANCE_OPTIONS = (GUIDANCE_SCALE, TEMPERATURE, TOP_P, SCHEDULER, NUM_INFERENCE_STEPS)
IMAGE_SIZE = Option(name="image_size", type=int, min=8,
                    help="height and width of the images (video frames) in pixels, a multiple of 8 (default: the "
                         "preset's or checkpoint's)")
INT4_GROUP_SIZE = Option(name="int4_group_size", type=int, choices=(32, 64, 128),
                         help="int4-weight-only: input features per scale and zero point (default 128)")
FRAMES = Option(name="frames", type=int, min=1, help="frames per video (default: the preset's or checkpoint's)")

#: torchao configs of the uniform quantizations: name -> (config class, its arguments, device types)
QUANT_CONFIGS = {
    "int8-weight-only": ("Int8WeightOnlyConfig", {}, ("cpu", "cuda")),
    "int8-dynamic": ("Int8DynamicActivationInt8WeightConfig", {}, ("cpu", "cuda")),
    "int4-weight-only": ("Int4WeightOnlyConfig", {"group_size": 128}, ("cpu", "cuda")),  # CPU: ours, over ATen's kernel
    "float8-weight-only": ("Float8WeightOnlyConfig", {}, ("cuda",)),
}

_D = "genaccel.decoders."


class Decoders:
    @hookimpl
    def genaccel_register_decoders(self, register):
        register(DecoderSpec(name="greedy", description="argmax at every step", factory=_D + "tokens:Greedy",
                             requires=TokenModel))
        register(DecoderSpec(name="top-p", description="temperature + nucleus sampling on the device, seeded",
                             factory=_D + "tokens:TopP", requires=TokenModel, options=(TEMPERATURE, TOP_P),
                             samples=True))
        register(DecoderSpec(name="beam", factory=_D + "tokens:Beam", requires=(TokenModel, BeamSearch),
                             description="beam search, 5 beams, length penalty 1.0; the cache reordered after every step",
                             options=(NUM_BEAMS, LENGTH_PENALTY)))
        register(DecoderSpec(name="nar", description="non-autoregressive: one forward per batch, no token loop",
                             factory=_D + "nar:NonAutoregressive", requires=BatchRunner))
        register(DecoderSpec(name="self-speculative", factory=_D + "speculative:SelfSpeculative",
                             description="LayerSkip: draft with the first E layers, verify with the rest (greedy, exact)",
                             requires=(TokenModel, EarlyExit), options=(EXIT_LAYER, DRAFT_LEN)))
        register(DecoderSpec(name="hf-generate", description="transformers' generate (greedy), the reference implementation",
                             factory=_D + "tokens:HFGenerate", requires=(TokenModel, TransformersReference)))
        register(DecoderSpec(
            name="llama-cpp", factory=_D + "llamacpp:LlamaCpp", requires=(TokenModel, LlamaCppReference),
            description="llama.cpp (greedy) on the run's own weights exported to GGUF: a reference engine",
            options=(Option(name="gguf_type", type=str, default="f32", choices=tuple(GGUF_PRECISION),
                            help="the GGUF export llama.cpp runs (q4_0, q4_K_M: by llama.cpp's quantizer)"),)))
        register(DecoderSpec(name="diffusers-pipeline", factory=_D + "pipeline:DiffusersPipeline",
                             requires=PipelineReference, options=GUIDANCE_OPTIONS,
                             description="diffusers' own pipeline on the workload's components, the reference implementation"))
        register(DecoderSpec(name="cfg", factory=_D + "guidance:CFG", requires=Guided, options=(*GUIDANCE_OPTIONS, TOP_K),
                             description="contrastive guidance: conditional and unconditional streams in one forward (2B)",
                             samples=True))
        register(DecoderSpec(name="cfg-sequential", factory=_D + "guidance:SequentialCFG", requires=Guided,
                             options=(*GUIDANCE_OPTIONS, TOP_K), samples=True,
                             description="contrastive guidance with a second, sequential forward per step (baseline)"))


_O = "genaccel.optimizations."


class Optimizations:
    @hookimpl
    def genaccel_register_optimizations(self, register):
        register(OptimizationSpec(name="sdpa", stage="attention", requires=AttentionSwitch, apply=_O + "basic:sdpa",
                                  description="PyTorch scaled_dot_product_attention instead of eager matmul-softmax-matmul"))
        register(OptimizationSpec(name="static-kv", stage="cache", requires=KVCacheSwitch, apply=_O + "basic:static_kv",
                                  description="static KV cache, allocated once and written in place"))
        register(OptimizationSpec(
            name="bf16-kv", stage="cache", requires=KVCacheDtype, needs="static-kv", lossless=False,
            apply=_O + "basic:bf16_kv",
            description="static KV cache stored in bfloat16: half a float32 cache's bytes read per decode step"))
        register(OptimizationSpec(name="compile", stage="compile", requires=Compilable, apply=_O + "basic:compile_steps",
                                  description="torch.compile of the hot step (decode step for autoregressive models)"))
        register(OptimizationSpec(name="cuda-graph", stage="graph", requires=CUDAGraphable, needs="static-kv",
                                  devices="cuda", apply=_O + "basic:cuda_graph",
                                  description="capture the hot step in a CUDA graph and replay it"))
        register(OptimizationSpec(
            name="channels-last", stage="weights", requires=ChannelsLast, apply=_O + "basic:channels_last",
            description="convolution weights and latents in channels-last (NHWC) memory layout"))
        register(OptimizationSpec(
            name="fused-qkv", stage="weights", requires=FusedQKV, needs="sdpa", apply=_O + "basic:fused_qkv",
            description="query, key and value projections of each attention fused into one linear (SDPA attention)"))
        register(OptimizationSpec(
            name="deepcache", stage="algorithm", requires=StepCache, lossless=False, apply=_O + "basic:deepcache",
            options=(CACHE_INTERVAL,),
            description="step cache (DeepCache): deep UNet features reused across adjacent steps, only the shallow "
                        "blocks run between full steps"))
        register(OptimizationSpec(
            name="huge-pages", stage="memory", requires=Workload, devices="cpu", apply=_O + "basic:huge_pages",
            description="weights of 2 MiB or more copied into transparent huge pages (CPU): a decode step's weight "
                        "stream crosses a TLB entry every 2 MiB instead of every 4 KiB"))
        register(OptimizationSpec(name="layerskip", stage="algorithm", requires=(TokenModel, EarlyExit),
                                  apply=_O + "layerskip:layerskip", options=(EXIT_LAYER, DRAFT_LEN),
                                  description="self-speculative decoding: early-exit drafts verified by the remaining layers"))


_Q = "genaccel.optimizations.quantization:"


class Quantization:
    @hookimpl
    def genaccel_register_optimizations(self, register):
        register(OptimizationSpec(
            name="autoquant", stage="weights", requires=Quantizable, lossless=False, apply=_Q + "autoquant",
            description="per linear layer, the fastest of no quantization / int8 weight-only / int8 dynamic / "
                        "int4 weight-only (/ float8 on CUDA), timed on the shapes the model really sees",
        ))
        for name, (cls, _, devices) in QUANT_CONFIGS.items():
            register(OptimizationSpec(name=name, description=f"every linear layer quantized with torchao {cls}",
                                      stage="weights", requires=Quantizable, devices=devices, lossless=False,
                                      apply=_Q + name.replace("-", "_"),
                                      options=(INT4_GROUP_SIZE,) if name == "int4-weight-only" else ()))


_C = "genaccel.cli."


class Commands:
    @hookimpl
    def genaccel_register_commands(self, register):
        register("train-layerskip", "continue training a model to exit early (LayerSkip recipe)",
                 _C + "layerskip:train_arguments", _C + "layerskip:train")
        register("layerskip-sweep", "search exit layer E and draft length k for self-speculative decoding",
                 _C + "layerskip:sweep_arguments", _C + "layerskip:sweep")
        register("characterize-study", "attention sequence lengths of every workload with attention, and Conv vs "
                 "Attention and temporal vs spatial attention of diffusion workloads, as figures (the study's Figs. "
                 "8-14)", _C + "study:arguments", _C + "study:characterize_study")
        register("characterize-diffusion", "the older name of characterize-study",
                 _C + "study:arguments", _C + "study:characterize_study")


#: plugin name → plugin object, registered by :func:`genaccel.plugin.manager.make_plugin_manager`
BUILTIN_PLUGINS = {
    "genaccel.decoders": Decoders(),
    "genaccel.optimizations": Optimizations(),
    "genaccel.quantization": Quantization(),
    "genaccel.commands": Commands(),
}
