"""The problem-string notation of tests/problem_string.hpp (docs/testing.md), for the PyTorch
peers that read the same case files: "[label:] op token ...", a token being a dimension
(<letter><int>[x<int>], n c h w k r s d g; r, s, d height x width), an option (name=value; a
size as src1=NxHxWxC),
a flag (word) or a following node (+word[=value])."""
import re

_DIM = re.compile(r"^([a-z])(\d+)(?:x(\d+))?$")


class Problem:
    def __init__(self, line):
        self.label, self.dims, self.options, self.flags, self.post = "", {}, {}, [], []
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            raise ValueError(f"empty problem string {line!r}")
        if tokens[0].endswith(":"):
            self.label = tokens.pop(0)[:-1]
        if not tokens:
            raise ValueError(f"no op after the label in {line!r}")
        self.op = tokens.pop(0)
        for token in tokens:
            m = _DIM.match(token)
            if token.startswith("+"):
                word, _, value = token[1:].partition("=")
                self.post.append((word, value))
            elif "=" in token:
                key, _, value = token.partition("=")
                self.options[key] = value
            elif m:
                if m.group(1) in self.dims:
                    raise ValueError(f"dimension {m.group(1)!r} given twice in {line!r}")
                first = int(m.group(2))
                self.dims[m.group(1)] = (first, int(m.group(3)) if m.group(3) else first)
            else:
                self.flags.append(token)

    def dim(self, letter, default=None):
        if letter in self.dims:
            return self.dims[letter][0]
        if default is None:
            raise ValueError(f"problem {self.label or self.op!r} has no {letter!r} dimension")
        return default

    def dim2(self, letter, default):
        return self.dims.get(letter, default)

    def number(self, name, default):
        return float(self.options.get(name, default))

    def shape(self, name, default=None):
        """An image size option name=NxHxWxC (batch, height, width, channels), e.g. src1=2x1x1x8."""
        if name not in self.options:
            return default
        parts = self.options[name].split("x")
        if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"problem {self.label or self.op!r}: {name}={self.options[name]} is not NxHxWxC")
        return tuple(int(p) for p in parts)


def read_problems(path):
    """The problems of a case file: one a line, blank lines and '#' comments skipped."""
    with open(path) as lines:
        return [Problem(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def same_padding(problem):
    """PyTorch's symmetric padding equal to cnngraph's pad=same for an odd square kernel."""
    (kh, kw), (dy, dx) = problem.dim2("r", (1, 1)), problem.dim2("d", (1, 1))
    if kh != kw or kh % 2 == 0 or dy != dx or problem.options.get("pad", "same") != "same":
        raise ValueError(f"{problem.label}: only odd square kernels with pad=same have a symmetric padding")
    return dy * (kh - 1) // 2
