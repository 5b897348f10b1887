"""``mindcode serve``: an OpenAI-compatible endpoint (/v1/models, /v1/completions, /v1/chat/completions).

    mindcode serve --config configs/gpu/tiny_cpu.yaml --checkpoint HF_DIR --tokenizer tokenizer.model --port 8000
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from backends import BACKENDS
from mindcode.commands.predict import TOKENIZER_HELP, check_predict_fits, check_tokenizer, chosen_backend
from mindcode.predict.run import AUTO_TEMPLATE, Generator, chat_template
from mindcode.serve.server import MindcodeServer
from mindcode.terminal import say

HELP = "serve a model over an OpenAI-compatible HTTP API, batching requests continuously"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a training config (its backend and model shape); not needed with --backend "
                                         "and an HF checkpoint directory")
    parser.add_argument("--backend", choices=list(BACKENDS))
    parser.add_argument("--checkpoint", required=True, help="HF directory or MindSpore .ckpt")
    parser.add_argument("--tokenizer", help=TOKENIZER_HELP)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", dest="api_key", default=os.environ.get("MINDCODE_API_KEY"),
                        help="requests must carry 'Authorization: Bearer KEY' (401 otherwise); default: the "
                             "MINDCODE_API_KEY environment variable, else no key")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model_name", default="mindcode")
    parser.add_argument("--template", default=AUTO_TEMPLATE,
                        help="chat requests' template: a FastChat name, hf (the tokenizer's own chat_template), or auto "
                             "(default: llama-2, CodeLlama-Instruct's, with a sentencepiece tokenizer; hf with an HF one)")
    parser.add_argument("--batch_size", type=int, default=8, help="most sequences decoded together")
    parser.add_argument("--max_queue", type=int, default=64, help="queued requests before 503")
    parser.add_argument("--request_timeout", type=float, default=600.0, help="seconds a request may take (408 after)")
    parser.add_argument("--max_length", type=int, default=4096,
                        help="prompt + new tokens of a request (the KV cache holds --batch_size of them; at most the "
                             "model's positions)")


def log_dir(args: argparse.Namespace) -> str:
    return "runs/serve"


def run(args: argparse.Namespace) -> dict[str, Any]:
    backend = chosen_backend(args)
    check_tokenizer(args)
    max_length = args.max_length
    if not args.api_key and args.host not in ("127.0.0.1", "localhost", "::1"):
        say(f"mindcode serve: warning: listening on {args.host} without an API key: anyone who reaches the port can "
            "use the model (give --api-key or MINDCODE_API_KEY)")
    if args.config:
        check_predict_fits(args.config, backend, 1, args.batch_size, max_length)
    generator = Generator(backend, args.checkpoint, args.tokenizer, args.config, max_length, max_rows=args.batch_size)
    template = chat_template(generator, args.template)  # checked before the first chat request, not by it
    server = MindcodeServer((args.host, args.port), generator, args.model_name, template, args.batch_size,
                            args.max_queue, args.request_timeout, args.api_key)
    host, port = server.server_address[:2]
    say(f"mindcode serve: {backend} model {args.model_name!r} on http://{host}:{port}/v1")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return {"host": host, "port": port, "stopped": True}


def summary(result: dict[str, Any]) -> str:
    return f"stopped serving on {result['host']}:{result['port']}"
