"""Run the whole timescale-autoencoder pipeline on the built-in synthetic city, on CPU.

Examples:
  tlgen demo                          # ./tlgen-demo: data, training run, timelapses, report
  tlgen demo --out /tmp/demo --steps 300

Synthesizes and prepares the city scene (42 days every 20 minutes, 64x64), trains the
tiny timescale autoencoder (a few CPU minutes; a second call resumes), writes a timelapse
in each mode plus two band edits, a contact sheet, the latent PCA plot and the evaluation
report, and prints the paths and the key numbers.
"""

from __future__ import annotations

import argparse
import os

CONFIG = "timescale_ae_synthetic.py"
DEMO_STEPS = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="./tlgen-demo", metavar="DIR",
                        help="output folder (default ./tlgen-demo; a second call resumes there)")
    parser.add_argument("--steps", type=int, default=DEMO_STEPS,
                        help=f"training steps (default {DEMO_STEPS}: about 5 minutes on 2 CPU cores)")


def run(args: argparse.Namespace) -> int:
    from tlgen import config as config_lib
    from tlgen.cli import timelapse as timelapse_cli
    from tlgen.data import open_dataset
    from tlgen.data.prepare import prepare
    from tlgen.errors import STOPPED, UserError
    from tlgen.families.timescale_ae import inference
    from tlgen.files import check_output_folder
    from tlgen.metrics.report import write_report
    from tlgen.trained import load
    from tlgen.train.trainer import train

    if args.steps < 1:
        raise UserError(f"--steps {args.steps} must be at least 1.")
    check_output_folder(args.out, "--out")
    out = os.path.abspath(args.out)
    data, workdir = os.path.join(out, "data"), os.path.join(out, "run")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {args.out} cannot be made ({e.strerror}); choose another folder.") from None
    if not os.path.exists(data):
        prepare(["synthetic:city"], data)
    try:
        open_dataset(data)
    except UserError as e:      # never replaced: it may be the user's own
        raise UserError(f"{data} is not the demo's dataset ({e}); move it away or choose another "
                        "--out.") from None
    config = config_lib.load(f"{os.path.join(config_lib.shipped_configs(), CONFIG)}:tiny",
                             [f"data.dir={data}", f"total_steps={args.steps}"])
    metrics = train(config, workdir)
    if metrics.get("preempted"):
        print(f"training stopped at step {metrics['step']} (checkpoint saved); run the same "
              "command again to continue.")
        return STOPPED

    paths = []
    trained = load(workdir)
    synth, start_time = inference.open_synthesizer(trained, data)
    jobs = [("subsample", "subsample", []), ("neighbours", "subsample", ["--render", "neighbours"]),
            ("interpolate", "interpolate", []),
            ("multiscale", "multiscale", []),
            ("remove_band", "subsample", ["--remove-band", "2"]),
            ("insert_band", "subsample", ["--insert-band", "0", "--from", "43200"])]
    parser = argparse.ArgumentParser()
    timelapse_cli.add_arguments(parser)
    for name, mode, extra in jobs:
        target = os.path.join(out, f"timelapse_{name}.mp4")
        argv = ["--workdir", workdir, "--out", target, "--mode", mode, "--frames", "48",
                "--start", "0", "--end", str(4 * 86400)] + extra
        if name == "subsample":
            argv += ["--sheet", os.path.join(out, "contact_sheet.png"),
                     "--npz", os.path.join(out, "timelapse_subsample.npz")]
        args = parser.parse_args(argv)
        timelapse_cli.check_arguments(args)
        timelapse_cli.write(args, inference.render_timelapse(synth, start_time, args))
        paths.append(target)
    eval_dir = os.path.join(workdir, "eval")
    report, _ = write_report(eval_dir, lambda plots_dir: inference.evaluate(trained, plots_dir, data))
    print(f"training: {metrics.get('step')} steps, final loss {metrics['loss']:.4f}" if "loss" in metrics
          else f"training: the run was at step {metrics.get('step')} already; nothing trained (a "
               "larger --steps trains on)")
    rows = report.get("band_fidelity", [])
    for row in rows:
        print(f"cutoff {row['cutoff_s'] / 3600:6.2f} h: masked reconstruction {row['decode']:.2f} dB, "
              f"neighbour rendering {row['neighbours']:.2f} dB, "
              f"raw frame {row['raw']:.2f} dB, oracle blur {row['oracle blur']:.2f} dB "
              f"(sigma {row['oracle_sigma_s'] / 3600:.2f} h), median {row['median']:.2f} dB, "
              f"period mean {row['period mean']:.2f} dB, nearest frames {row['nearest frames']:.2f} dB, "
              f"temporal pyramid {row['pyramid']:.2f} dB (vs ground-truth band); neighbour "
              f"rendering minus the best baseline {inference.margin_over_baselines(row):+.2f} dB")
    if rows:
        wins = [f"{r['cutoff_s'] / 3600:.1f} h" for r in rows if inference.margin_over_baselines(r) >= 1.0]
        print(f"the neighbour rendering beats every baseline (raw frame, oracle blur, median, period "
              f"mean, nearest frames) by 1 dB or more at {len(wins)} of {len(rows)} cutoffs{': ' + ', '.join(wins) if wins else ''}")
    for row in report.get("timelapse", []):
        print(f"E_tmp {row['method']}: {row['e_tmp']:.1f}")
    for row in report.get("flicker", []):
        print(f"E_tmp at cutoff {row['cutoff_s'] / 3600:6.2f} h (subsampled): masked decode {row['decoder']:.1f}, "
              f"neighbour rendering {row['neighbours']:.1f}, raw frames {row['raw subsample']:.1f}")
    if report.get("leakage"):
        print("bin leakage (the largest share of a slower bin's variation a component makes alone): "
              + ", ".join(f"{r['component']} {r['largest_in_slower_bin']:.0%}" for r in report["leakage"]))
    print("files:")
    for p in paths + [os.path.join(out, "contact_sheet.png"), os.path.join(out, "timelapse_subsample.npz")]:
        print(f"  {p}")
    for p in sorted(os.listdir(eval_dir)):
        print(f"  {os.path.join(eval_dir, p)}")
    return 0
