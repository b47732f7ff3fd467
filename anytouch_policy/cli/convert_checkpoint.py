"""anytouch convert-checkpoint log/checkpoint.pth models/anytouch-large --trust-pickle

Convert a released AnyTouch checkpoint (stage 1 or 2) into an encoder bundle (config.json + model.safetensors) and
print a JSON summary. The official file stores an argparse.Namespace, so it needs --trust-pickle: only pass it for
a file whose source you trust (unpickling can run arbitrary code). Every other loader reads safetensors only.
--decoder-out DIR also writes the checkpoint's MAE decoder (for `anytouch pretrain --init-decoder DIR`).
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.bounds import AT_LEAST_1
from anytouch_policy.cli.args import number
from anytouch_policy.pretrain.config import DecoderConfig
from anytouch_policy.schema import default_of

COUNT = number(int, AT_LEAST_1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="checkpoint: .pth with a 'model' state_dict, a bare state_dict, or .safetensors")
    parser.add_argument("out_dir", help="bundle folder to write")
    parser.add_argument("--heads", type=COUNT, default=None, help="attention heads (default: width / 64)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow full unpickling of SRC (needed for the official file; can run code from SRC)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an encoder bundle in OUT_DIR (and a decoder folder in --decoder-out)")
    parser.add_argument("--decoder-out", metavar="DIR",
                        help="also write the MAE decoder there (for anytouch pretrain --init-decoder)")
    parser.add_argument("--decoder-heads", type=COUNT, default=default_of(DecoderConfig, "heads"),
                        help="decoder attention heads (default: %(default)s, the official decoder's)")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.model.convert_official import convert_checkpoint
    from anytouch_policy.outputs import check_output_dir
    from anytouch_policy.pretrain.checkpoint import DECODER_FOLDER

    if args.decoder_out:  # both outputs are checked before the (large) checkpoint is read
        check_output_dir(args.decoder_out, DECODER_FOLDER, overwrite=args.overwrite)
    report = convert_checkpoint(args.src, args.out_dir, heads=args.heads, trust_pickle=args.trust_pickle,
                                overwrite=args.overwrite)
    summary = report.to_json()
    if args.decoder_out:
        from anytouch_policy.pretrain.convert_decoder import convert_decoder_checkpoint

        decoder = convert_decoder_checkpoint(args.src, args.decoder_out, report.config, heads=args.decoder_heads,
                                             trust_pickle=args.trust_pickle, overwrite=args.overwrite)
        summary["decoder"] = {"out_dir": args.decoder_out, "width": decoder.width, "layers": decoder.layers,
                              "heads": decoder.heads, "mlp_ratio": decoder.mlp_ratio}
    print(json.dumps(summary, indent=2))
    return 0
