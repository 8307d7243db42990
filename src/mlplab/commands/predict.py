"""`mlplab predict`: the digit in each of the user's own image files."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "predict",
        help="predict the digit in PNG/JPEG/BMP images (prepared like MNIST, or like the 8×8 digits)",
        description="Predict the digit in image files of any size and colour. Each image is turned to grayscale, "
        "inverted when its background is light, cropped to the ink, scaled so its longer side is 20 px and centred "
        "by centre of mass in 28×28 (for a digits model: fitted into a 32×32 bitmap and reduced to 8×8 counts 0–16).",
    )
    parser.add_argument("model", help="a model.npz written by mlplab train")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, BMP, …)")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"image", "label", "probabilities"} instead of one line per image (default: off)',
    )
    parser.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from mlplab.models import Model
    from mlplab.predict import predict_files

    model, meta = Model.load(args.model)
    predictions, errors = predict_files(model, meta, args.images)
    for error in errors:
        print(f"mlplab predict: error: {error}", file=sys.stderr)
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=2))
    else:
        for prediction in predictions:
            print(prediction.line())
    return 2 if errors else 0
