"""The diffusion path: the denoising loop over a diffusers scheduler, prompts, parts, the latent
diffusion base, the step cache, diffusers' pipelines as the reference, the attention
characterization and the similarity-matrix memory model.  Imports ``models`` and below."""
