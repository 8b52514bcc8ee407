"""How to build every registry entry for the contract tests (a new zoo entry must be added)."""

THETA = [0.3, -0.2, 1.1, -0.7, 0.5, 1.3, -0.4, 0.9]
# Every primitive once, with a literal: cross-entropy plus a bounded correction (22 edges).
SYMBOLIC = (
    "add(neg(mul(y,log(f))),div(square(sub(f,y)),add(sqrt(f),tanh(max(abs(f),"
    "min(sign(y),neg(-0.5)))))))"
)
SYMBOLIC_WEIGHTS = [round(1.0 + 0.05 * ((-1) ** i) * i, 2) for i in range(22)]

CONSTRUCTION = {
    "baikal": {},
    "cross_entropy": {},
    "sparse_cross_entropy": {},
    "mse": {},
    "probability_mse": {},
    "poly_loss": {"epsilon": 2.5},
    "taylor_glo": {"theta": THETA},
    "taylor_glo_reference": {},
    "cyclic_class_emphasis": {"num_classes": 4, "period": 6, "amplitude": 3.0},
    "learned_loss": {"seed": 3},
    "symbolic": {"expression": SYMBOLIC, "weights": SYMBOLIC_WEIGHTS},
}
# Keras losses that take only class ids (the zoo's own accept both formats).
SPARSE_ONLY = {"sparse_cross_entropy"}
# The zoo's own classes, which promise one-hot *and* sparse labels, sample weights, dtypes...
METALOSS = [
    "baikal",
    "probability_mse",
    "poly_loss",
    "taylor_glo",
    "taylor_glo_reference",
    "cyclic_class_emphasis",
    "learned_loss",
    "symbolic",
]


def spec(name: str) -> str:
    """The registry spec string that builds ``name`` with its construction arguments."""
    arguments = ",".join(f"{k}={v}".replace(" ", "") for k, v in CONSTRUCTION[name].items())
    return f"{name}:{arguments}" if arguments else name


def build(entry: str, **kwargs):
    from metaloss import losses

    return losses.get(spec(entry), **kwargs)
