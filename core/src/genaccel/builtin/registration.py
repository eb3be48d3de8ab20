"""The built-in decoders, optimizations and commands, registered without importing torch.

Each spec names its implementation by an import string, resolved on first use.  The plugin
objects keep the names of the modules that implement them (``genaccel.builtin.optimizations``
registers ``sdpa`` ...), which is what ``genaccel list`` shows as their plugin.
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import DecoderSpec, OptimizationSpec, Option

# --- options shared by several specs (one declaration, so that they are equal) --------------------

TEMPERATURE = Option(name="temperature", type=float, default=0.6, min=0, min_exclusive=True,
                     help="sampling temperature (top-p and guided sampling)")
TOP_P = Option(name="top_p", type=float, default=0.9, min=0, min_exclusive=True, max=1,
               help="nucleus sampling: the smallest token set of this much probability")
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

#: torchao configs of the uniform quantizations: name -> (config class, its arguments, device types)
QUANT_CONFIGS = {
    "int8-weight-only": ("Int8WeightOnlyConfig", {}, ("cpu", "cuda")),
    "int8-dynamic": ("Int8DynamicActivationInt8WeightConfig", {}, ("cpu", "cuda")),
    "int4-weight-only": ("Int4WeightOnlyConfig", {"group_size": 128}, ("cuda",)),
    "float8-weight-only": ("Float8WeightOnlyConfig", {}, ("cuda",)),
}

_D = "genaccel.builtin.decoders:"


class Decoders:
    @hookimpl
    def genaccel_register_decoders(self, register):
        register(DecoderSpec(name="greedy", description="argmax at every step", factory=_D + "Greedy",
                             requires="autoregressive"))
        register(DecoderSpec(name="top-p", description="temperature + nucleus sampling on the device, seeded",
                             factory=_D + "TopP", requires="autoregressive", options=(TEMPERATURE, TOP_P)))
        register(DecoderSpec(name="beam", factory=_D + "Beam", requires=("autoregressive", "beam"),
                             description="beam search, 5 beams, length penalty 1.0; the cache reordered after every step",
                             options=(NUM_BEAMS, LENGTH_PENALTY)))
        register(DecoderSpec(name="nar", description="non-autoregressive: one forward per batch, no token loop",
                             factory=_D + "NonAutoregressive", requires="non-autoregressive"))
        register(DecoderSpec(name="self-speculative", factory="genaccel.speculative:SelfSpeculative",
                             description="LayerSkip: draft with the first E layers, verify with the rest (greedy, exact)",
                             requires=("autoregressive", "early-exit"), options=(EXIT_LAYER, DRAFT_LEN)))
        register(DecoderSpec(name="hf-generate", description="transformers' generate (greedy), the reference implementation",
                             factory=_D + "HFGenerate", requires="hf-generate"))
        register(DecoderSpec(name="diffusers-pipeline", factory="genaccel.reference:DiffusersPipeline",
                             requires="diffusers-pipeline", options=GUIDANCE_OPTIONS,
                             description="diffusers' own pipeline on the workload's components, the reference implementation"))


class Guidance:
    @hookimpl
    def genaccel_register_decoders(self, register):
        register(DecoderSpec(name="cfg", factory="genaccel.builtin.guidance:CFG", requires="cfg", options=GUIDANCE_OPTIONS,
                             description="contrastive guidance: conditional and unconditional streams in one forward (2B)"))
        register(DecoderSpec(name="cfg-sequential", factory="genaccel.builtin.guidance:SequentialCFG", requires="cfg",
                             options=GUIDANCE_OPTIONS,
                             description="contrastive guidance with a second, sequential forward per step (baseline)"))


_O = "genaccel.builtin.optimizations:"
_DIFF = "genaccel.builtin.diffusion:"


class Optimizations:
    @hookimpl
    def genaccel_register_optimizations(self, register):
        register(OptimizationSpec(name="sdpa", stage="attention", requires="attention", apply=_O + "_sdpa",
                                  description="PyTorch scaled_dot_product_attention instead of eager matmul-softmax-matmul"))
        register(OptimizationSpec(name="static-kv", stage="cache", requires="kv-cache", apply=_O + "_static_kv",
                                  description="static KV cache, allocated once and written in place"))
        register(OptimizationSpec(name="compile", stage="compile", requires="compile", apply=_O + "_compile",
                                  description="torch.compile of the hot step (decode step for autoregressive models)"))
        register(OptimizationSpec(name="cuda-graph", stage="graph", requires="cuda-graph", needs="static-kv",
                                  devices="cuda", apply=_O + "_cuda_graph",
                                  description="capture the hot step in a CUDA graph and replay it"))
        register(OptimizationSpec(
            name="channels-last", stage="weights", requires="channels-last", apply=_DIFF + "_channels_last",
            description="convolution weights and latents in channels-last (NHWC) memory layout"))
        register(OptimizationSpec(
            name="fused-qkv", stage="weights", requires="fused-qkv", needs="sdpa", apply=_DIFF + "_fused_qkv",
            description="query, key and value projections of each attention fused into one linear (SDPA attention)"))
        register(OptimizationSpec(
            name="deepcache", stage="algorithm", requires="step-cache", lossless=False, apply=_DIFF + "_deepcache",
            options=(CACHE_INTERVAL,),
            description="step cache (DeepCache): deep UNet features reused across adjacent steps, only the shallow "
                        "blocks run between full steps"))
        register(OptimizationSpec(name="layerskip", stage="algorithm", requires="early-exit", apply=_O + "_layerskip",
                                  options=(EXIT_LAYER, DRAFT_LEN),
                                  description="self-speculative decoding: early-exit drafts verified by the remaining layers"))


_Q = "genaccel.builtin.quantization:"


class Quantization:
    @hookimpl
    def genaccel_register_optimizations(self, register):
        register(OptimizationSpec(
            name="autoquant", stage="weights", requires="quantize", lossless=False, apply=_Q + "_autoquant",
            description="per linear layer, the fastest of no quantization / int8 weight-only / int8 dynamic "
                        "(/ int4, float8 on CUDA), timed on the shapes the model really sees",
        ))
        for name, (cls, _, devices) in QUANT_CONFIGS.items():
            register(OptimizationSpec(name=name, description=f"every linear layer quantized with torchao {cls}",
                                      stage="weights", requires="quantize", devices=devices, lossless=False,
                                      apply=_Q + name.replace("-", "_")))


class LayerSkipCommands:
    @hookimpl
    def genaccel_register_commands(self, register):
        from . import layerskip  # light: its heavy imports are inside the commands

        register("train-layerskip", "continue training a model to exit early (LayerSkip recipe)",
                 layerskip.train_arguments, layerskip.cmd_train_layerskip)
        register("layerskip-sweep", "search exit layer E and draft length k for self-speculative decoding",
                 layerskip.sweep_arguments, layerskip.cmd_layerskip_sweep)


class DiffusionCommands:
    @hookimpl
    def genaccel_register_commands(self, register):
        from . import diffusion_commands  # light: its heavy imports are inside the command

        register("characterize-diffusion", "attention sequence length, Conv vs Attention and temporal vs spatial "
                 "attention of diffusion workloads (the study's Figs. 8-14)",
                 diffusion_commands.arguments, diffusion_commands.cmd_characterize_diffusion)


#: plugin name → plugin object, registered by :func:`genaccel.plugins.make_plugin_manager`
BUILTIN_PLUGINS = {
    "genaccel.builtin.decoders": Decoders(),
    "genaccel.builtin.guidance": Guidance(),
    "genaccel.builtin.optimizations": Optimizations(),
    "genaccel.builtin.quantization": Quantization(),
    "genaccel.builtin.layerskip": LayerSkipCommands(),
    "genaccel.builtin.diffusion_commands": DiffusionCommands(),
}
