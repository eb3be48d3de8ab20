"""The public plugin API: everything a plugin (a workload, a decoder, an optimization, a command) may
use of genaccel.  Plugins and examples import from this module only; the rest of the package is
internal and may change.

Names are imported on first use (module ``__getattr__``), so that a plugin's registration module can
import its specs, roles and options from here without importing torch: ``genaccel list`` stays fast.

- registering: ``hookimpl``, ``workload_hook``, ``WorkloadSpec``, ``DecoderSpec``, ``OptimizationSpec``, ``Option``,
  ``BuildOptions`` (what a workload's ``build`` receives), ``NotApplied``, ``STAGES``, ``device_type``,
  the options built-ins share (``ALLOW_MISSING_WEIGHTS``, ``GUIDANCE_OPTIONS``, ``TEMPERATURE``, ...);
- the workload contract: ``Role``, ``Member`` and every role (``TokenModel``, ``Denoiser`` ...) and
  step protocol (``StepProtocol`` ...), the roles the core's workload bases play, as bundles for specs
  (``CAUSAL_LM_ROLES``, ``CODE_COMPLETION_ROLES``, ``MEDIA_TOKEN_ROLES``, ``MASKED_TOKEN_ROLES``,
  ``LATENT_DIFFUSION_ROLES``), ``BatchResult`` (what a decoder returns);
- errors and files: ``GenaccelError``, ``unknown_name``, ``cannot_load``, ``first_line``, ``warn``,
  ``read_text``, ``read_json_object``, ``write_bytes``, ``write_json``, ``cache_dir``, ``writing`` (an
  unwritable or full disk while saving media: one line naming the file);
- the engine: ``StepExecutor``, ``phase``, ``region``, ``annotate``, ``current_phase``, clocks,
  ``channels_last``, ``conv1d_channels_last``;
- models: inputs, tokenizers trained offline, checkpoint loading, random weights;
- the token path: ``HFCausalLM``, ``Seq2SeqLM``, ``CausalLMWorkload``, ``CodeCompletion``, the supported
  architectures and their builders (``ARCHITECTURES``, ``random_causal_lm``, ``load_causal_lm``), caches,
  the decode frame and loops (``DecodeRun``, ``generate``, ``beam_search``, pickers), ``shard_causal_lm``;
- diffusion: ``LatentDiffusion``, its parts, prompts, the denoising loop and its settings.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    # registering (light)
    "hookimpl": "plugin.hookspecs",
    "workload_hook": "plugin.hookspecs",
    "WorkloadSpec": "plugin.specs",
    "DecoderSpec": "plugin.specs",
    "OptimizationSpec": "plugin.specs",
    "BuildOptions": "plugin.specs",
    "NotApplied": "plugin.specs",
    "STAGES": "plugin.specs",
    "device_type": "plugin.specs",
    "Option": "plugin.options",
    "ALLOW_MISSING_WEIGHTS": "plugin.builtin",
    "GUIDANCE_OPTIONS": "plugin.builtin",
    "GUIDANCE_SCALE": "plugin.builtin",
    "NUM_INFERENCE_STEPS": "plugin.builtin",
    "SCHEDULER": "plugin.builtin",
    "TEMPERATURE": "plugin.builtin",
    "TOP_P": "plugin.builtin",
    "TOP_K": "plugin.builtin",
    "IMAGE_SIZE": "plugin.builtin",
    "FRAMES": "plugin.builtin",
    "BatchResult": "plugin.batch",
    # the workload contract (light)
    "Role": "plugin.role",
    "Member": "plugin.role",
    **dict.fromkeys(
        ("Workload", "TokenModel", "BatchRunner", "MediaCodec", "PromptInput", "TeacherForcing",
         "WeightStreaming", "EarlyExit", "BeamSearch", "TransformersReference", "LlamaCppReference", "Quantizable",
         "AttentionSwitch",
         "KVCacheSwitch", "KVCacheDtype", "Compilable", "CUDAGraphable", "ChannelsLast", "FusedQKV", "Guided", "TokenGuidance",
         "Denoiser", "GuidedLoop", "MaskedTokens", "StepCache", "PipelineReference", "StepProtocol", "ReorderableSteps",
         "TwinSteps", "SpeculativeSteps", "AttentionRecord", "LATENT_DIFFUSION_ROLES", "CAUSAL_LM_ROLES",
         "CODE_COMPLETION_ROLES", "MEDIA_TOKEN_ROLES", "MASKED_TOKEN_ROLES"), "plugin.roles"),
    # errors and files (light)
    **dict.fromkeys(("GenaccelError", "unknown_name", "cannot_load", "first_line"), "errors"),
    **dict.fromkeys(("warn", "read_text", "read_json_object", "write_bytes", "write_json", "cache_dir", "writing"),
                    "files"),
    # the engine
    "StepExecutor": "engine.executor",
    "CompiledSteps": "engine.executor",
    **dict.fromkeys(("phase", "region", "annotate", "current_phase"), "engine.profiling"),
    **dict.fromkeys(("StepClock", "synced_now", "synchronize"), "engine.clock"),
    **dict.fromkeys(("channels_last", "conv1d_channels_last"), "engine.layout"),
    **dict.fromkeys(("AttentionSite", "find_attention_sites", "call_lengths", "record_attention"), "engine.attention"),
    # models
    **dict.fromkeys(("TextSample", "LengthDistribution"), "models.inputs"),
    **dict.fromkeys(("code_corpus", "train_bpe_tokenizer", "clip_style_tokenizer", "t5_style_tokenizer"),
                    "models.tokenizers"),
    **dict.fromkeys(("check_checkpoint_dir", "check_tokenizer_files", "load_hf_checkpoint"), "models.checkpoints"),
    **dict.fromkeys(("check_loading_info", "weights_description"), "models.loading"),
    **dict.fromkeys(("init_random_weights", "materialize"), "models.weights"),
    **dict.fromkeys(("positive", "divides"), "models.shapes"),
    # the token path
    "HFCausalLM": "llm.causal_lm",
    "Seq2SeqLM": "llm.seq2seq",
    "CausalLMWorkload": "llm.workload",
    **dict.fromkeys(("CodeCompletion", "code_tokenizer"), "llm.completion"),
    **dict.fromkeys(("random_causal_lm", "load_causal_lm", "restore_buffers"), "llm.building"),
    **dict.fromkeys(("ARCHITECTURES", "supported_architecture"), "llm.architectures"),
    "resolve_checkpoint": "models.checkpoints",
    **dict.fromkeys(("DynamicKVCache", "StaticKVCache"), "llm.kvcache"),
    "nbytes": "llm.footprint",
    **dict.fromkeys(("SDPA_FLEX_DECODE", "mark_cross_attention"), "llm.flex_decode"),
    **dict.fromkeys(("cpu_gemv_linears", "RowReduceLinear"), "llm.gemv"),
    **dict.fromkeys(("DecodeRun", "generate", "greedy_pick", "top_p_pick", "top_k_pick", "loop_options", "pad_left",
                     "with_media"),
                    "llm.decoding"),
    "beam_search": "llm.beam",
    "shard_causal_lm": "distributed.tp",
    # diffusion
    "LatentDiffusion": "diffusion.latent",
    **dict.fromkeys(("SCHEDULERS", "Settings", "settings", "make_scheduler", "denoise"), "diffusion.loop"),
    **dict.fromkeys(("PROMPTS", "PromptSample", "Prompted", "parameters", "pick_prompts", "prompt_samples", "prompt_sample",
                     "save_images", "save_videos"),
                    "diffusion.prompts"),
    **dict.fromkeys(("build_parts", "part_configs", "part_modules", "load_pipeline_folder", "read_model_index",
                     "scheduler_name", "positive_option"), "diffusion.parts"),
    "reduced_parts": "diffusion.sizes",
    "attention_profile": "diffusion.attention",
    "make_pipeline": "diffusion.pipeline",
    **dict.fromkeys(("ParallelSettings", "parallel_settings", "parallel_decode"), "diffusion.parallel"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'genaccel.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"genaccel.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
