"""The bench configuration: a TOML file of defaults and cases, validated with line numbers."""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

import attrs

from .errors import GenaccelError
from .runner import RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RUN_KEYS = {f.name for f in attrs.fields(RunConfig)} - {"workload", "optimizations", "batch_size"}
CASE_KEYS = (RUN_KEYS - {"seq_len"}) | {"workload", "stacks", "batch_sizes", "seq_lens", "reference", "profile",
                                        "make_checkpoint"}
TOP_KEYS = {"defaults", "cases"}
WHOLE_KEYS = {"samples", "batch_size", "max_new_tokens", "seq_len", "seed", "warmup", "cache_len", "exit_layer",
              "draft_len"}


@attrs.frozen(kw_only=True)
class BenchCase:
    workload: str
    stacks: tuple[tuple[str, ...], ...]
    batch_sizes: tuple[int, ...]
    reference: bool
    profile: bool = False  # also profile the first and last stack at the first batch size and length
    seq_lens: tuple = (None,)
    options: dict = attrs.field(factory=dict, hash=False)
    make_checkpoint: str | None = None  # the command that makes the case's checkpoint when it is missing

    def missing_checkpoint(self) -> str | None:
        """Why the case cannot run (its checkpoint directory is absent), or None."""
        path = self.options.get("checkpoint")
        if not path or Path(path).exists():
            return None
        how = f"; make it with: {self.make_checkpoint}" if self.make_checkpoint else ""
        return f"checkpoint {path} does not exist{how}"

    def profile_configs(self) -> list[RunConfig]:
        if not self.profile:
            return []
        common = dict(workload=self.workload, batch_size=self.batch_sizes[0], seq_len=self.seq_lens[0], **self.options)
        stacks = [self.stacks[0], self.stacks[-1]] if len(self.stacks) > 1 else [self.stacks[0]]
        return [RunConfig(optimizations=s, **{**common, "samples": 1}) for s in stacks]

    def configs(self) -> list[RunConfig]:
        """For each sequence length and batch size: the reference (when asked), then every stack."""
        out = []
        for seq_len in self.seq_lens:
            for bs in self.batch_sizes:
                common = dict(workload=self.workload, batch_size=bs, seq_len=seq_len, **self.options)
                if self.reference:
                    out.append(RunConfig(decoder="hf-generate", **common))
                out += [RunConfig(optimizations=s, **common) for s in self.stacks]
        return out


@attrs.frozen(kw_only=True)
class BenchConfig:
    path: Path
    cases: tuple[BenchCase, ...]

    @classmethod
    def from_toml(cls, path: str | Path) -> BenchConfig:
        path = Path(path)
        from .files import read_text

        text = read_text(path, "bench config")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise GenaccelError(f"{path}: malformed TOML: {e}") from None
        return cls.from_dict(data, path=path, text=text)

    @classmethod
    def from_dict(cls, data: dict, *, path: Path, text: str = "") -> BenchConfig:
        finder = _LineFinder(path, text)
        for key in data:
            if key not in TOP_KEYS:
                raise finder.error(key, None, f"unknown table {key!r}", TOP_KEYS)
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise finder.error("defaults", None, "[defaults] must be a table")
        for key in defaults:
            if key not in RUN_KEYS:
                raise finder.error(key, "defaults", f"unknown key {key!r} in [defaults]", RUN_KEYS)
        raw_cases = data.get("cases")
        if not isinstance(raw_cases, list) or not raw_cases:
            raise GenaccelError(f"{path}: no [[cases]]; add at least one with workload = \"family/task\"")
        cases = []
        for n, raw in enumerate(raw_cases):
            for key in raw:
                if key not in CASE_KEYS:
                    raise finder.error(key, n, f"unknown key {key!r} in [[cases]] #{n + 1}", CASE_KEYS)
            if "workload" not in raw:
                raise finder.error("workload", n, f"[[cases]] #{n + 1} has no workload = \"family/task\"")
            options = {**defaults, **{k: v for k, v in raw.items() if k in RUN_KEYS}}
            for key, value in options.items():  # whole numbers are whole numbers, named at their line
                if key in WHOLE_KEYS and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    section = n if key in raw else "defaults"
                    raise finder.error(key, section, f"{key} = {value!r} must be a whole number, e.g. {key} = 2")
            if isinstance(options.get("checkpoint"), str):
                options["checkpoint"] = expand_cache(options["checkpoint"])
            stacks = raw.get("stacks", [[]])
            if not (isinstance(stacks, list) and all(isinstance(s, list) and all(isinstance(x, str) for x in s) for s in stacks)):
                raise finder.error("stacks", n, "stacks must be a list of lists of optimization names, e.g. [[], [\"sdpa\"]]")
            sizes = raw.get("batch_sizes", [1])
            if not (isinstance(sizes, list) and sizes and all(isinstance(b, int) and b >= 1 for b in sizes)):
                raise finder.error("batch_sizes", n, "batch_sizes must be a non-empty list of positive integers")
            default_len = options.pop("seq_len", None)  # [defaults] seq_len = N is seq_lens = [N]
            seq_lens = raw.get("seq_lens", [default_len])
            if not (isinstance(seq_lens, list) and seq_lens and all(x is None or (isinstance(x, int) and x >= 1) for x in seq_lens)):
                raise finder.error("seq_lens", n, "seq_lens must be a non-empty list of positive integers")
            case = BenchCase(
                seq_lens=tuple(seq_lens),
                workload=raw["workload"],
                stacks=tuple(tuple(s) for s in stacks),
                batch_sizes=tuple(sizes),
                reference=bool(raw.get("reference", False)),
                profile=bool(raw.get("profile", False)),
                options=options,
                make_checkpoint=expand_cache(raw["make_checkpoint"]) if "make_checkpoint" in raw else None,
            )
            try:
                case.configs()
            except (TypeError, ValueError) as e:
                bad = next((k for k in options if k in str(e)), "workload")
                raise finder.error(bad, n, f"bad value in [[cases]] #{n + 1}: {e}") from None
            cases.append(case)
        return cls(path=path, cases=tuple(cases))


def expand_cache(text: str) -> str:
    """``{cache}`` stands for genaccel's cache directory ($GENACCEL_CACHE or ~/.cache/genaccel)."""
    from .measure import cache_dir

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
