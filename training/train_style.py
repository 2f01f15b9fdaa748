"""Train a style-transfer net on frames of the project's synthetic corpus and export it to ONNX.

    python -m training.train_style --style mosaic --net fast --steps 400 --threads 1     # ~2.5 min
    python -m training.train_style --style mosaic --net johnson --steps 400 --lr 2e-3 --threads 1
    python -m training.train_style --style mosaic --net fast --skip --steps 800 --threads 1 \
        --teacher models/styles/checkpoints/mosaic-johnson.pt   # distilled from the Johnson net, ~10 min
    python -m training.train_style --net vae --styles mosaic,waves,ink --steps 800 --threads 1

(The committed files were made by exactly these commands, see each manifest entry's ``command``.
``--threads 1`` is much faster than 2 when something else shares a 2-core machine.)

Content images are random crops of frames drawn by ``devkit.corpus`` (all six topics, random
times); style images are drawn by ``style_images``. Losses (``style_nets``): relative Gram style
loss + content loss + total variation (+ beta * KL for the VAE), on the frozen ``FeatureNet``.
With ``--teacher`` the student also matches a trained net's outputs (distillation: L1 on pixels
plus the content features). Fixed seeds; a progress bar; writes a before/after grid to
``var/style_train/<name>.png``, a checkpoint to ``<out>/checkpoints/<name>.pt``, ``<out>/<name>.onnx`` (input ``image`` [+ ``style``],
output ``stylized``, dynamic batch/height/width) and its entry in ``<out>/manifest.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
from torch.nn import functional as F
from tqdm import tqdm

from devkit.corpus import TOPICS, frames, spec_for
from training.export import MODELS_DIR, command_line, export_onnx, record
from training.style_images import origin, style_image, write_all
from training.style_nets import (
    FeatureNet,
    StyleVAE,
    build,
    content_loss,
    gram,
    kl_divergence,
    parameter_count,
    style_loss,
    tv_loss,
)
from training.train_encoder import seed_everything

VERSION = {"fast": "style-fast-1", "johnson": "style-johnson-1", "vae": "style-vae-1"}
MULTIPLE = 4  # two stride-2 stages
FEATURES = "FrameCNN body (models/checkpoints/video_encoder.pt) + fixed random multi-scale conv net (seed 1234)"


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def to_images(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def content_frames(clips: int, per_clip: int, seed: int) -> np.ndarray:
    """``per_clip`` frames at random times from each of ``clips`` corpus clips (topics cycle)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in tqdm(range(clips), desc="drawing content frames", unit="clip", leave=False):
        spec = spec_for(i, seed=seed)
        total = int(round(spec.seconds * spec.fps))
        wanted = set(rng.choice(total, size=per_clip, replace=False).tolist())
        out += [f for t, f in zip(range(max(wanted) + 1), frames(spec)) if t in wanted]
    return np.stack(out)


def random_crops(pool: torch.Tensor, batch: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Random square crops (60-100% of the frame height), resized to ``size``, randomly mirrored."""
    n, _, h, w = pool.shape
    crops = []
    for _ in range(batch):
        i = int(torch.randint(n, (1,), generator=g))
        side = int(torch.randint(int(0.6 * h), h + 1, (1,), generator=g))
        y, x = (int(torch.randint(d - side + 1, (1,), generator=g)) for d in (h, w))
        crop = F.interpolate(pool[i:i + 1, :, y:y + side, x:x + side], size=(size, size), mode="bilinear",
                             antialias=True, align_corners=False)
        crops.append(crop.flip(3) if torch.rand((), generator=g) < 0.5 else crop)
    return torch.cat(crops)


def stylise(model: torch.nn.Module, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    return model(x, style) if isinstance(model, StyleVAE) else model(x)


def evaluate(model: torch.nn.Module, feat: FeatureNet, x: torch.Tensor, targets: torch.Tensor | list,
             styles: list[str]) -> dict:
    """Style loss of the inputs and of the outputs against each style, on held-out frames."""
    model.eval()
    out = {}
    with torch.no_grad():
        f_in, c_in = feat(x)
        for s, name in enumerate(styles):
            sid = torch.full((len(x),), s, dtype=torch.long)
            y = stylise(model, x, sid)
            f_out, c_out = feat(y)
            tg = [t[s:s + 1] for t in targets]
            out[name] = {"style_loss_input": round(style_loss(f_in, tg).item(), 4),
                         "style_loss_output": round(style_loss(f_out, tg).item(), 4),
                         "content_loss": round(content_loss(c_out, c_in).item(), 4)}
    return out


def write_grid(path: Path, model: torch.nn.Module, x: torch.Tensor, styles: list[str]) -> Path:
    """Rows: held-out frames; columns: the input, then one output per style; a style swatch row on top."""
    model.eval()
    with torch.no_grad():
        cols = [x] + [stylise(model, x, torch.full((len(x),), s, dtype=torch.long)) for s in range(len(styles))]
    h, w = x.shape[2:]
    swatches = [np.zeros((h, w, 3), np.uint8)] + [cv2.resize(style_image(s), (h, h)) for s in styles]
    top = np.concatenate([np.pad(s, ((0, 0), (0, w - s.shape[1]), (0, 0))) for s in swatches], 1)
    rows = np.concatenate([np.concatenate(list(to_images(c)), 0) for c in cols], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([top, rows], 0), cv2.COLOR_RGB2BGR))
    return path


def load_teacher(path: Path, styles: list[str]) -> torch.nn.Module:
    """A trained single-style net of the same style from its checkpoint (``<out>/checkpoints/<name>.pt``),
    frozen."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved["kind"] == "vae":
        raise ValueError(f"{path}: a teacher must be a fast or johnson net, not a VAE")
    if saved["styles"] != styles:
        raise ValueError(f"{path} was trained for {saved['styles']}, the student is for {styles}")
    a = saved.get("args", {})
    widths = tuple(a["widths"]) if a.get("widths") else None
    teacher = build(saved["kind"], 1, widths, bool(a.get("skip")), int(a.get("kernel") or 5))
    teacher.load_state_dict(saved["state_dict"])
    return teacher.eval().requires_grad_(False)


def train(args: argparse.Namespace, styles: list[str], pool: torch.Tensor, feat: FeatureNet,
          targets: list[torch.Tensor]) -> tuple[torch.nn.Module, list[dict]]:
    g = seed_everything(args.seed)
    teacher = load_teacher(args.teacher, styles) if args.teacher else None
    model = build(args.net, len(styles), args.widths, args.skip, args.kernel)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    history = []
    bar = tqdm(range(args.steps), desc=f"training {args.net} {','.join(styles)}", unit="step")
    for step in bar:
        model.train()
        x = random_crops(pool, args.batch, args.size, g)
        sid = torch.randint(len(styles), (args.batch,), generator=g)
        kl = x.new_zeros(())
        if isinstance(model, StyleVAE):
            mu, logvar = model.encode(x)
            y = model.decode(model.reparameterise(mu, logvar), sid)
            kl = kl_divergence(mu, logvar)
        else:
            y = model(x)
        with torch.no_grad():
            _, c_in = feat(x)
        f_out, c_out = feat(y)
        s_loss = style_loss(f_out, [t[sid] for t in targets])
        c_loss, t_loss = content_loss(c_out, c_in), tv_loss(y)
        loss = args.style_weight * s_loss + args.content_weight * c_loss + args.tv_weight * t_loss + args.beta * kl
        d_loss = x.new_zeros(())
        if teacher is not None:  # distillation: match the teacher's picture, pixel by pixel and in features
            with torch.no_grad():
                y_t = teacher(x)
                _, c_t = feat(y_t)
            d_loss = F.l1_loss(y, y_t) + content_loss(c_out, c_t)
            loss = loss + args.teacher_weight * d_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        row = {"loss": loss.item(), "style": s_loss.item(), "content": c_loss.item(), "tv": t_loss.item(), "kl": kl.item(),
               "teacher": d_loss.item()}
        history.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()
                         if (k != "kl" or args.net == "vae") and (k != "teacher" or teacher is not None)})
    model.eval()
    return model, history


def export(model: torch.nn.Module, path: Path, vae: bool, check: torch.Tensor) -> float:
    """Export to ONNX and return the largest |onnxruntime - torch| difference on ``check``."""
    names = ["image", "style"] if vae else ["image"]
    dims = {0: "batch", 2: "height", 3: "width"}
    axes = {"image": dims, "stylized": dims, **({"style": {0: "batch"}} if vae else {})}
    style = torch.zeros(len(check), dtype=torch.long)
    dummy = (torch.rand(1, 3, 64, 64),) + ((torch.zeros(1, dtype=torch.long),) if vae else ())
    export_onnx(model, dummy, path, names, ["stylized"], axes)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"image": check.numpy(), **({"style": style.numpy()} if vae else {})}
    with torch.no_grad():
        expected = stylise(model, check, style).numpy()
    return float(np.abs(session.run(None, feeds)[0] - expected).max())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", choices=sorted(VERSION), default="fast")
    p.add_argument("--widths", type=lambda v: tuple(int(x) for x in v.split(",")), default=None,
                   help="fast net channel widths, e.g. 24,48,64 (default 16,32,48)")
    p.add_argument("--skip", action="store_true",
                   help="fast net: add the full-resolution first-layer features back before the last conv")
    p.add_argument("--kernel", type=int, default=5, choices=(3, 5, 7, 9),
                   help="fast net: kernel size of the full-resolution first and last convs")
    p.add_argument("--teacher", type=Path, default=None,
                   help="distil from this trained net's checkpoint (e.g. models/styles/checkpoints/mosaic-johnson.pt): "
                        "the student also matches its outputs (L1 + content features)")
    p.add_argument("--teacher-weight", type=float, default=1.0)
    p.add_argument("--style", default="mosaic", help="the style of a fast or johnson net")
    p.add_argument("--styles", default="mosaic,waves,ink", help="the styles of the VAE (comma-separated)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--size", type=int, default=160, help="training crop size (pixels)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--style-weight", type=float, default=1.0)
    p.add_argument("--content-weight", type=float, default=0.3)
    p.add_argument("--tv-weight", type=float, default=0.3)
    p.add_argument("--beta", type=float, default=0.01, help="KL weight (VAE only)")
    p.add_argument("--clips", type=int, default=48, help="corpus clips to draw content frames from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=MODELS_DIR / "styles")
    p.add_argument("--grids", type=Path, default=Path("var/style_train"))
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: all cores)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    styles = args.styles.split(",") if args.net == "vae" else [args.style]
    name = "style-vae" if args.net == "vae" else f"{args.style}-{args.net}"
    write_all(args.out)

    feat = FeatureNet()
    with torch.no_grad():
        style_feats = [feat(to_tensor(style_image(s)[None]))[0] for s in styles]
    targets = [torch.cat([gram(f[k]) for f in style_feats]) for k in range(len(style_feats[0]))]  # (S, C, C) each
    pool = to_tensor(content_frames(args.clips, 4, args.seed))
    held_out = content_frames(len(TOPICS), 1, args.seed + 1)  # one unseen clip per topic
    check = to_tensor(np.stack([cv2.resize(f, (256, 144), interpolation=cv2.INTER_AREA) for f in held_out]))

    started = time.time()
    model, history = train(args, styles, pool, feat, targets)
    seconds = round(time.time() - started, 1)
    scores = evaluate(model, feat, check, targets, styles)
    grid = write_grid(args.grids / f"{name}.png", model, check, styles)

    checkpoint = args.out / "checkpoints" / f"{name}.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "kind": args.net, "styles": styles,
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, checkpoint)
    path = args.out / f"{name}.onnx"
    diff = export(model, path, args.net == "vae", check)
    tail = history[-min(50, len(history)):]
    final = {k: round(float(np.mean([r[k] for r in tail])), 4) for k in tail[0]}
    io = {"image": ["batch", 3, "height", "width"], **({"style": ["batch"]} if args.net == "vae" else {})}
    entry = record(name, path, VERSION[args.net], command_line("training.train_style"), {
        "kind": args.net, "styles": styles, "style_images": {s: origin(s) for s in styles},
        **({"widths": list(args.widths)} if args.widths else {}), **({"skip": True} if args.skip else {}),
        **({"kernel": args.kernel} if args.kernel != 5 else {}),
        **({"teacher": str(args.teacher), "teacher_weight": args.teacher_weight} if args.teacher else {}),
        "inputs": io, "outputs": {"stylized": ["batch", 3, "height", "width"]}, "range": [0.0, 1.0],
        "multiple_of": MULTIPLE, "size": args.size, "steps": args.steps, "batch": args.batch, "seed": args.seed,
        "parameters": parameter_count(model), "final_losses": final, "eval": scores, "feature_net": FEATURES,
        "weights": {"style": args.style_weight, "content": args.content_weight, "tv": args.tv_weight,
                    **({"beta": args.beta} if args.net == "vae" else {})},
        "train_seconds": seconds, "onnx_max_abs_diff": diff,
        "checkpoint": str(checkpoint.relative_to(args.out)), "grid": str(grid),
    })
    for s, r in scores.items():
        print(f"{s}: style loss {r['style_loss_input']:.3f} (input) -> {r['style_loss_output']:.3f} (output), "
              f"content loss {r['content_loss']:.3f}")
    print(f"wrote {path} ({entry['bytes']} bytes, {entry['parameters']} parameters, onnx-torch {diff:.1e}) "
          f"and {grid} in {seconds} s")


if __name__ == "__main__":
    main()
