"""``genaccel generate``: continue one prompt (text, or an image or speech where the workload takes
one) and print the text or the files written."""

from __future__ import annotations

from ..errors import GenaccelError
from ..files import OutputDir
from ..plugin.role import offers
from ..plugin.roles import PromptInput, TokenModel
from .args import out_dir, resolve_run


def generate_command(args, registry) -> int:
    if not args.prompt.strip():
        raise GenaccelError("--prompt is empty; give the text to continue")
    spec = registry.workload(args.workload)
    if not (offers(spec.roles, PromptInput) or offers(spec.roles, TokenModel)):
        raise GenaccelError(f"generate continues a prompt, and {spec.name} takes none; measure it with "
                            f"`genaccel run {spec.name}`")
    out = out_dir(args, "generate")
    run = resolve_run(args, registry, args.opt).with_config(out_dir=str(out))
    from ..models.inputs import TextSample  # torch, once every name is right
    from ..run.context import fit_cache
    from ..run.prepare import prepare

    OutputDir(out, overwrite=True)  # files it writes (images, audio) replace their namesakes; removed again if left empty
    ctx = prepare(run)
    inst = ctx.instance
    if ctx.has(PromptInput):  # input is more than text (an image, ...)
        sample = inst.prompt_sample(args.prompt, args.max_new_tokens, ctx.config.options)
    else:
        sample = TextSample(id="prompt", input_ids=inst.encode(args.prompt), max_new_tokens=args.max_new_tokens or 64)
    ctx.max_seq_len = fit_cache(run.config, [[sample]]) if ctx.has(TokenModel) else 0
    result = ctx.decoder.run(ctx, [sample])
    files = result.records[0].get("files")
    if files:  # the output is an image or audio, written to files
        print("\n".join(f"wrote {f}" for f in files))
    else:
        print(args.prompt + inst.decode(result.outputs[0]))
    return 0
