"""``tridft finetune MODEL DATA --property NAME --kind KIND -o NEW_MODEL.pt``: a new property.

Attaches a new head to the latent of a trained model and trains it on the labels of
DATA (which may hold only that property). The new model file predicts everything the
old one did, unchanged with the default ``--freeze latent``, plus the new property
under its name (see tridft.transfer.finetune).
"""

from __future__ import annotations

import argparse

from tridft.cli.arguments import (TRAINED_MODEL_HELP, add_command, add_model, add_no_progress,
                                  add_output, add_seed, add_units, positive_int)

KINDS = ("structure_scalar", "structure_vector", "atom_scalar", "structure_tensor", "dipole")


HELP = "learn a new property from a few labels on a trained model's latent"
DESCRIPTION = """Attach a new head (a scalar, vector or tensor per structure, a scalar per
atom, or a dipole) to MODEL's latent and train it on the labels of DATA. By default backbone
and bottleneck are frozen, so the old predictions stay exactly as they were."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "finetune", run, HELP, DESCRIPTION)
    add_model(parser, TRAINED_MODEL_HELP)
    parser.add_argument("data", metavar="DATA",
                        help="structures carrying the new label (extxyz, ASE .db, ...)")
    parser.add_argument("--property", required=True, metavar="NAME",
                        help="name of the new output (and of its label in DATA)")
    parser.add_argument("--kind", required=True, choices=KINDS,
                        help="what the property is; dipole: e*Angstrom from charges and "
                             "atomic dipoles, molecules only")
    parser.add_argument("--freeze", default="latent",
                        choices=("latent", "backbone", "none", "backbone+bottleneck", "nothing"),
                        help="what stays fixed: latent (or backbone+bottleneck; the default): "
                             "backbone and bottleneck, only the new head learns; backbone: "
                             "only the backbone, the bottleneck learns too; none (or nothing): "
                             "nothing, everything learns (pre-trained parts at a smaller "
                             "learning rate)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--steps", type=positive_int, metavar="N",
                       help="optimizer steps (default 1000)")
    limit.add_argument("--epochs", type=positive_int, metavar="N",
                       help="passes over the training labels")
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate of the new head "
                                                              "(default 3e-3)")
    parser.add_argument("--pretrained-lr-factor", type=float, default=0.1, metavar="F",
                        help="with --freeze backbone/none, the pre-trained parts learn at "
                             "lr * F (default 0.1)")
    parser.add_argument("--batch-size", type=positive_int, default=16, metavar="N")
    parser.add_argument("--n-train", type=positive_int, metavar="N",
                        help="use N labelled structures (training + validation), drawn at "
                             "random; default all")
    parser.add_argument("--validation-fraction", type=float, default=0.2, metavar="F",
                        help="held out for early stopping (default 0.2)")
    parser.add_argument("--patience", type=positive_int, default=30, metavar="N",
                        help="validations without improvement before stopping (default 30)")
    parser.add_argument("--intensive", action="store_true",
                        help="structure_scalar: the mean over atoms instead of the sum")
    add_seed(parser, help=None)
    parser.add_argument("--keys", metavar="NAME=KEY",
                        help="the file key of the label when it is not NAME, e.g. gap=homo_lumo")
    add_units(parser, "units of DATA, e.g. length=bohr,dipole=Debye (other properties "
                      "are used as they are in the file)")
    add_no_progress(parser)
    add_output(parser, "NEW_MODEL.pt", "where to write the fine-tuned model", required=True)


def run(args: argparse.Namespace) -> int:
    from tridft.data.options import parse_pairs, parse_units
    from tridft.errors import ConfigError
    from tridft.model.persistence import load_model
    from tridft.data.domain import DomainCheck
    from tridft.outputs import check_outputs
    from tridft.transfer.finetune import (FinetuneOptions, check_new_head_name, finetune,
                                          read_labels, save_finetuned)

    # Option errors first, before anything is read.
    options = FinetuneOptions.create(
        property=args.property, kind=args.kind, freeze=args.freeze, steps=args.steps,
        epochs=args.epochs, lr=args.lr, pretrained_lr_factor=args.pretrained_lr_factor,
        batch_size=args.batch_size, n_train=args.n_train,
        validation_fraction=args.validation_fraction, patience=args.patience,
        extensive=not args.intensive, seed=args.seed)
    keys = parse_pairs(args.keys, "--keys")
    unknown = sorted(set(keys) - {args.property})
    if unknown:
        raise ConfigError(f"--keys: only the new property '{args.property}' can be mapped, "
                          f"not '{unknown[0]}'")
    units = parse_units(args.units)
    check_outputs({"-o": args.output}, inputs={"MODEL": args.model, "DATA": args.data})

    model = load_model(args.model)
    check_new_head_name(model, args.property)
    records = read_labels(args.data, _target(options), keys.get(args.property), units)
    domain = DomainCheck.for_model(model, args.data)  # the frozen latent must know them
    domain.structures(records)
    domain.report()
    result = finetune(model, records, options, progress=not args.no_progress)
    save_finetuned(result, args.output)
    print(f"{args.property} ({args.kind}, freeze {args.freeze}): validation MAE "
          f"{result.validation['mae']:.4g}, RMSE {result.validation['rmse']:.4g} on "
          f"{result.n_validation} structures (trained on {result.n_train}, best of "
          f"{result.steps} steps)")
    print(f"model with heads {', '.join(result.model.heads)} written to {args.output}")
    return 0


def _target(options):
    from tridft.transfer.targets import Target

    return Target(options.property, options.kind, options.extensive)
