"""`mlplab gradcheck`: every parameter's analytic gradient against central finite differences."""

from __future__ import annotations

import argparse

from mlplab.errors import MlplabError
from mlplab.files import quoted

MODELS = ("softmax", "two_layer", "mlp", "cnn")
EXIT_FAILED = 1


def register(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser("gradcheck", help="compare a model's gradients with central finite differences")
    check.add_argument(
        "--model",
        choices=MODELS,
        default="two_layer",
        help="which model's gradients: the Softmax Regression, the Two-Layer Net or an MLP shaped by "
        "--hidden-sizes and --activation (default: two_layer)",
    )
    check.add_argument("--hidden-sizes", default="32,16", help="MLP widths, comma-separated (default: 32,16)")
    check.add_argument("--activation", default="sigmoid", help="MLP/CNN activation (default: sigmoid)")
    check.add_argument("--conv-channels", default="3,4", help="CNN filters per conv block (default: 3,4)")
    check.add_argument("--kernel-size", type=int, default=3, help="CNN kernel size (default: 3)")
    check.add_argument(
        "--conv-padding", default="circular", help="CNN padding: valid, same or circular (default: circular)"
    )
    check.add_argument(
        "--batch-norm",
        action="store_true",
        help="CNN: a BatchNorm after each convolution, checked in training mode (batch statistics)",
    )
    check.add_argument("--reg", type=float, default=0.01, help="L2 strength included in J (default: 0.01)")
    check.add_argument("--batch", type=int, default=16, help="digits images in the checked batch")
    check.add_argument(
        "--samples", type=int, default=40, help="coordinates checked per parameter, at most (default: 40)"
    )
    check.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest relative error that passes (default: 1e-06)"
    )
    check.add_argument("--seed", type=int, default=0, help="seeds the model and the random point (default: 0)")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplab import data as datasets
    from mlplab.gradcheck import check_gradients, move_to_random_point
    from mlplab.models import build_model
    from mlplab.training import batches

    widths = hidden_widths(args.hidden_sizes)
    if not 1 <= args.batch <= 1024:
        raise MlplabError(f"--batch must be between 1 and 1024 images, got {args.batch}")
    if args.batch_norm and args.model != "cnn":
        raise MlplabError("--batch-norm goes with --model cnn")
    if args.samples < 1:
        raise MlplabError(f"--samples must be ≥ 1, got {args.samples}")
    ds = datasets.load("digits")
    x, y = next(batches(ds.train, args.batch, ds.pixel_max, "float64"))
    model = build_model(
        args.model,
        input_size=ds.input_size,
        hidden_sizes=widths[:1] if args.model == "two_layer" else widths,
        activation=args.activation,
        conv_channels=[int(c) for c in args.conv_channels.split(",") if c.strip()],
        kernel_size=args.kernel_size,
        conv_padding=args.conv_padding,
        batch_norm=args.batch_norm,
        image_shape=ds.image_shape,
        seed=args.seed,
        dtype="float64",
    )
    move_to_random_point(model, args.seed)
    mode = " with BatchNorm in training mode (batch statistics)" if args.batch_norm else ""
    print(f"{type(model).__name__}{mode} on {len(y)} digits images, float64, J = CE + {args.reg}/2·Σ‖W‖², ε = 1e-5")
    results = check_gradients(model, x.copy(), y.copy(), reg=args.reg, samples=args.samples, seed=args.seed)
    for r in results:
        verdict = "PASS" if r.worst_relative_error <= args.tolerance else "FAIL"
        print(
            f"  {r.name:<6} worst relative error {r.worst_relative_error:.2e}  "
            f"({r.checked} of {r.size} coordinates)  {verdict}"
        )
    return 0 if all(r.worst_relative_error <= args.tolerance for r in results) else EXIT_FAILED


def hidden_widths(text: str) -> list[int]:
    """--hidden-sizes: comma-separated positive integers."""
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise MlplabError(f"--hidden-sizes takes comma-separated widths ≥ 1, e.g. 32,16; got {quoted(text)}")
    return widths
