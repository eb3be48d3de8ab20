"""A bench TOML: ``[defaults]`` and ``[[cases]]``, each case a workload's stacks over batch sizes
(and sequence lengths), with references and profiles; validated with line numbers before the first
case runs.  Light: no torch."""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from pathlib import Path

import attrs

from ..errors import GenaccelError
from ..files import cache_dir, read_text
from ..plugin.specs import REFERENCES
from .config import RunConfig, default_warmup

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RUN_KEYS = {f.name for f in attrs.fields(RunConfig)} - {"workload", "optimizations", "batch_size", "options", "round"}
CASE_KEYS = (RUN_KEYS - {"seq_len"}) | {"workload", "stacks", "batch_sizes", "seq_lens", "reference", "profile",
                                        "make_checkpoint", "rounds"}
TOP_KEYS = {"defaults", "cases"}
WHOLE_KEYS = {"tp", "samples", "batch_size", "max_new_tokens", "seq_len", "seed", "warmup", "cache_len", "exit_layer",
              "draft_len", "repeat"}


#: reference engine -> its decoder; ``reference = true`` is the workload's own reference (transformers' generate,
#: diffusers' pipeline)
ENGINES = {r.engine: r.decoder for r in REFERENCES}


def missing_engine(engine: str) -> str | None:
    """Why a reference engine cannot run here (the module it needs is not installed), or None."""
    ref = next(r for r in REFERENCES if r.engine == engine)
    if ref.module is None or importlib.util.find_spec(ref.module) is not None:
        return None
    return f"{engine} needs the {ref.module} module, which is not installed ({ref.install})"


def _references(raw, finder, n) -> tuple[str, ...]:
    """A case's ``reference``: true (transformers' generate), false, or a list of engines."""
    if isinstance(raw, bool):
        return ("default",) if raw else ()
    if not (isinstance(raw, list) and all(r in ENGINES for r in raw)):
        raise finder.error("reference", n, "reference must be true, false or a list of "
                           + ", ".join(f'"{r}"' for r in ENGINES))
    return tuple(dict.fromkeys(raw))


@attrs.frozen(kw_only=True)
class BenchCase:
    workload: str
    stacks: tuple[tuple[str, ...], ...]
    batch_sizes: tuple[int, ...]
    reference: tuple[str, ...] = ()  # reference engines run beside the stacks: "transformers", "llama.cpp"
    profile: bool = False  # also profile the first and last stack at the first batch size and length
    seq_lens: tuple = (None,)
    options: dict = attrs.field(factory=dict, hash=False)  # RunConfig fields
    values: dict = attrs.field(factory=dict, hash=False)  # declared options (top_p, image_tokenizer ...)
    make_checkpoint: str | None = None  # the command that makes the case's checkpoint when it is missing
    rounds: int = 1  # its runs alternate, round after round (A B A B), each round a case of its own
    registry: object = attrs.field(default=None, eq=False, repr=False)  # to give each run the options it takes

    def missing_checkpoint(self) -> str | None:
        """Why the case cannot run (its checkpoint directory is absent), or None."""
        path = self.options.get("checkpoint")
        if not path or Path(path).exists():
            return None
        how = f"; make it with: {self.make_checkpoint}" if self.make_checkpoint else ""
        return f"checkpoint {path} does not exist{how}"

    def missing_engine(self) -> str | None:
        """Why the case cannot run here: it compares with a reference engine that is not installed (its
        stacks run only beside it), or None."""
        why = next(filter(None, (missing_engine(r) for r in self.reference if r != "default")), None)
        return why and f"this case compares with a reference engine, and {why}: its runs are skipped"

    def runs(self) -> list[tuple[tuple[str, ...], str | None]]:
        """(optimizations, decoder) of every run of the case."""
        decoder, spec = self.options.get("decoder"), self._spec()
        default = (spec.reference_decoder if spec is not None else None) or "hf-generate"  # reference = true
        return [((), ENGINES.get(r, default)) for r in self.reference] + [(s, decoder) for s in self.stacks]

    def _spec(self):
        if self.registry is None or self.workload not in self.registry.workloads:
            return None
        return self.registry.workload(self.workload)

    def _config(self, optimizations, decoder, **common) -> RunConfig:
        values, spec = self.values, self._spec()
        if spec is not None:  # [defaults] and stacks may hold options some runs do not take
            takes = self.registry.run_options(spec, decoder, optimizations)
            values = {k: x for k, x in values.items() if k in takes}
        fields = {"warmup": default_warmup(optimizations), **self.options, **common, "decoder": decoder}
        return RunConfig(workload=self.workload, optimizations=optimizations, options=values, **fields)

    def profile_configs(self) -> list[RunConfig]:
        if not self.profile:
            return []
        common = dict(batch_size=self.batch_sizes[0], seq_len=self.seq_lens[0], samples=1)
        stacks = [self.stacks[0], self.stacks[-1]] if len(self.stacks) > 1 else [self.stacks[0]]
        return [self._config(s, self.options.get("decoder"), **common) for s in stacks]

    def configs(self) -> list[RunConfig]:
        """For each round (when alternated in rounds), sequence length and batch size: the reference
        (when asked), then every stack."""
        rounds = range(self.rounds) if self.rounds > 1 else (None,)
        return [self._config(stack, decoder, batch_size=bs, seq_len=seq_len, round=r) for r in rounds
                for seq_len in self.seq_lens for bs in self.batch_sizes for stack, decoder in self.runs()]


@attrs.frozen(kw_only=True)
class BenchConfig:
    path: Path
    cases: tuple[BenchCase, ...]

    @classmethod
    def from_toml(cls, path: str | Path, registry) -> BenchConfig:
        path = Path(path)
        text = read_text(path, "bench config")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise GenaccelError(f"{path}: malformed TOML: {e}") from None
        return cls.from_dict(data, path=path, text=text, registry=registry)

    @classmethod
    def from_dict(cls, data: dict, *, path: Path, registry, text: str = "") -> BenchConfig:
        """``registry`` knows the options workloads, decoders and optimizations declare; a case's option
        must be taken by one of its runs."""
        declared = {name: option for name, (option, _) in registry.all_options().items()}
        finder = _LineFinder(path, text)
        for key in data:
            if key not in TOP_KEYS:
                raise finder.error(key, None, f"unknown table {key!r}", TOP_KEYS)
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise finder.error("defaults", None, "[defaults] must be a table")
        for key in defaults:
            if key not in RUN_KEYS | declared.keys():
                raise finder.error(key, "defaults", f"unknown key {key!r} in [defaults]", RUN_KEYS | declared.keys())
        raw_cases = data.get("cases")
        if not isinstance(raw_cases, list) or not raw_cases:
            raise GenaccelError(f"{path}: no [[cases]]; add at least one with workload = \"family/task\"")
        parse = _CaseParser(defaults=defaults, declared=declared, finder=finder, registry=registry)
        return cls(path=path, cases=tuple(parse(n, raw) for n, raw in enumerate(raw_cases)))


@attrs.frozen(kw_only=True)
class _CaseParser:
    """One ``[[cases]]`` table checked (keys, values, lists) and made a :class:`BenchCase`, every error
    naming its line."""

    defaults: dict
    declared: dict
    finder: object
    registry: object

    def __call__(self, n: int, raw: dict) -> BenchCase:
        finder, known = self.finder, CASE_KEYS | self.declared.keys()
        for key in raw:
            if key not in known:
                raise finder.error(key, n, f"unknown key {key!r} in [[cases]] #{n + 1}", known)
        if "workload" not in raw:
            raise finder.error("workload", n, f"[[cases]] #{n + 1} has no workload = \"family/task\"")
        options, values = self._options(n, raw)
        default_len = options.pop("seq_len", None)  # [defaults] seq_len = N is seq_lens = [N]
        stacks, sizes, seq_lens = self._lists(n, raw, default_len)
        case = BenchCase(
            seq_lens=tuple(seq_lens), workload=raw["workload"], stacks=tuple(tuple(s) for s in stacks),
            batch_sizes=tuple(sizes), reference=_references(raw.get("reference", False), finder, n),
            profile=bool(raw.get("profile", False)), options=options, values=values,
            make_checkpoint=expand_cache(raw["make_checkpoint"]) if "make_checkpoint" in raw else None,
            registry=self.registry, rounds=self._rounds(n, raw),
        )
        try:
            case.configs()
        except (TypeError, ValueError) as e:
            bad = next((k for k in options if k in str(e)), "workload")
            raise finder.error(bad, n, f"bad value in [[cases]] #{n + 1}: {e}") from None
        except GenaccelError as e:  # an unknown optimization or decoder of an installed workload
            raise finder.error("stacks", n, f"[[cases]] #{n + 1}: {e}") from None
        _check_case_options(case, raw, finder, n)
        return case

    def _options(self, n: int, raw: dict) -> tuple[dict, dict]:
        """The case's run fields and its declared options' values ([defaults] under the case's own), checked."""
        merged = {**self.defaults, **{k: v for k, v in raw.items() if k in RUN_KEYS or k in self.declared}}
        values = {k: v for k, v in merged.items() if k not in RUN_KEYS}
        options = {k: v for k, v in merged.items() if k in RUN_KEYS}
        for key, value in values.items():
            try:
                values[key] = self.declared[key].check(value)
            except GenaccelError as e:
                raise self.finder.error(key, n, f"bad value in [[cases]] #{n + 1}: {e}") from None
        for key, value in options.items():  # whole numbers are whole numbers, named at their line
            if key in WHOLE_KEYS and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                section = n if key in raw else "defaults"
                raise self.finder.error(key, section, f"{key} = {value!r} must be a whole number, e.g. {key} = 2")
        if isinstance(options.get("checkpoint"), str):
            options["checkpoint"] = expand_cache(options["checkpoint"])
        return options, values

    def _rounds(self, n: int, raw: dict) -> int:
        rounds = raw.get("rounds", 1)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise self.finder.error("rounds", n, f"rounds = {rounds!r} must be a whole number >= 1, e.g. rounds = 2")
        return rounds

    def _lists(self, n: int, raw: dict, default_len) -> tuple[list, list, list]:
        """The case's stacks, batch sizes and sequence lengths, each checked."""
        stacks = raw.get("stacks", [[]])
        if not (isinstance(stacks, list) and all(isinstance(s, list) and all(isinstance(x, str) for x in s)
                                                 for s in stacks)):
            raise self.finder.error("stacks", n, "stacks must be a list of lists of optimization names, e.g. "
                                    "[[], [\"sdpa\"]]")
        sizes = raw.get("batch_sizes", [1])
        if not (isinstance(sizes, list) and sizes and all(isinstance(b, int) and b >= 1 for b in sizes)):
            raise self.finder.error("batch_sizes", n, "batch_sizes must be a non-empty list of positive integers")
        seq_lens = raw.get("seq_lens", [default_len])
        if not (isinstance(seq_lens, list) and seq_lens
                and all(x is None or (isinstance(x, int) and x >= 1) for x in seq_lens)):
            raise self.finder.error("seq_lens", n, "seq_lens must be a non-empty list of positive integers")
        return stacks, sizes, seq_lens


def _check_case_options(case: BenchCase, raw: dict, finder: _LineFinder, n: int) -> None:
    """An option set in a case (not in [defaults]) must be taken by one of the case's runs."""
    spec = case._spec()
    if spec is None:  # the workload's plugin is not installed: the case is a recorded skip
        return
    registry = case.registry
    for key in raw:
        if key not in case.values:
            continue
        runs = case.runs()
        if not any(key in registry.run_options(spec, decoder, stack) for stack, decoder in runs):
            stack, decoder = runs[-1]
            try:
                registry.check_run_options({key: case.values[key]}, spec, decoder, stack)
            except GenaccelError as e:
                raise finder.error(key, n, f"[[cases]] #{n + 1}: {e}") from None


def expand_cache(text: str) -> str:
    """``{cache}`` stands for genaccel's cache directory ($GENACCEL_CACHE or ~/.cache/genaccel)."""
    return str(text).replace("{cache}", str(cache_dir()))


class _LineFinder:
    """Finds the line where a key is set, to point errors at it."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line_of(self, key: str, section) -> int | None:
        start = 0
        if section == "defaults":
            start = next((i for i, l in enumerate(self.lines) if re.match(r"\s*\[defaults\]", l)), 0)
        elif isinstance(section, int):
            headers = [i for i, l in enumerate(self.lines) if re.match(r"\s*\[\[cases\]\]", l)]
            if section < len(headers):
                start = headers[section]
        pattern = re.compile(rf"^\s*(\[+\s*)?\"?{re.escape(key)}\"?\s*[=\].]")
        for begin in (start, 0):  # the section first, then anywhere (a value set in [defaults])
            for i in range(begin, len(self.lines)):
                if pattern.match(self.lines[i]):
                    return i + 1
        return None

    def error(self, key: str, section, message: str, known=None) -> GenaccelError:
        line = self.line_of(key, section)
        where = f"{self.path}:{line}" if line else str(self.path)
        hint = ""
        if known:
            near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(known))})"
        return GenaccelError(f"{where}: {message}{hint}")
