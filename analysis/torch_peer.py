#!/usr/bin/env python3
"""PyTorch (eager, CPU, 1 thread) peer benchmark for the Swift GPT engine.

Reproduces the model of Sources/PolicyModel/ModelConfig.swift: GPT-2 style, token
embedding wte[V,C] + learned positions wpe[T,C], L pre-LayerNorm blocks (eps 1e-5, with
bias), fused c_attn (q,k,v) with bias, causal multi-head attention scaled by
1/sqrt(head_dim), c_proj with bias, MLP c_fc(4C) -> GELU(tanh) -> c_proj, final
LayerNorm, logits = ln_f(x) @ wte^T (tied head). Parameter names follow nanoGPT.

It measures what EngineBenchmark.measure measures in Swift:
  * training tokens/s: forward over [batch, context] random tokens, mean cross-entropy
    against the next tokens (last position of each row ignored, as in Swift), backward,
    grad-norm clip 1.0 and AdamW(lr 1e-4, betas (0.9, 0.95), wd 0.1 on matrices), zero_grad.
  * sampling tokens/s: `batch` rows from token 0, one position at a time through a
    preallocated per-layer KV cache [B, H, T, hs] until the context is full
    (batch*context positions per generation), temperature-1 multinomial sampling
    (plus the drawn token's log-prob, as the Swift sampler returns it).
Each measurement loops for >= --seconds, is repeated --repeats times, the median is shown.

PyTorch is not a dependency of rlscale: make a virtualenv outside the repository
(python3 -m venv /opt/torchpeer && /opt/torchpeer/bin/pip install torch numpy) and run
this with its interpreter, right after `rlscale bench` on the same machine (the README's
comparison table was measured that way).

Example:
  /opt/torchpeer/bin/python analysis/torch_peer.py \
      --configs xs:16:2:2,s:32:2:2,m:64:2:2,l:96:3:3,large:256:4:4 \
      --vocab 23 --context 64 --batch 64 --seconds 1.0 --repeats 3 --json
  /opt/torchpeer/bin/python analysis/torch_peer.py --check   # correctness self-test
"""
import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass


# ----------------------------------------------------------------------------- model

class Block(nn.Module):
    def __init__(self, C, H, eps):
        super().__init__()
        self.C, self.H, self.hs = C, H, C // H
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(C, 3 * C)
        self.attn.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(C, 4 * C)
        self.mlp.c_proj = nn.Linear(4 * C, C)

    def mlp_forward(self, x):
        return self.mlp.c_proj(F.gelu(self.mlp.c_fc(x), approximate="tanh"))

    def forward(self, x):
        # x: [B, T, C]
        B, T, C = x.shape
        qkv = self.attn.c_attn(self.ln_1(x))
        q, k, v = qkv.view(B, T, 3, self.H, self.hs).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale 1/sqrt(hs)
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + self.attn.c_proj(y)
        return x + self.mlp_forward(self.ln_2(x))

    def decode(self, x, kc, vc, t):
        """One position for every row. x: [B, C]; kc, vc: [B, H, Tmax, hs] caches."""
        B, C = x.shape
        qkv = self.attn.c_attn(self.ln_1(x))
        q, k, v = qkv.view(B, 3, self.H, self.hs).unbind(1)       # [B, H, hs] each
        kc[:, :, t] = k
        vc[:, :, t] = v
        keys = kc[:, :, : t + 1]                                   # [B, H, t+1, hs]
        vals = vc[:, :, : t + 1]
        att = torch.matmul(q.unsqueeze(2), keys.transpose(-1, -2))  # [B, H, 1, t+1]
        att = torch.softmax(att * (1.0 / math.sqrt(self.hs)), dim=-1)
        y = torch.matmul(att, vals).view(B, C)                     # [B, H, 1, hs] -> [B, C]
        x = x + self.attn.c_proj(y)
        return x + self.mlp_forward(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab, context, C, L, H, eps=1e-5):
        super().__init__()
        assert C % H == 0
        self.vocab, self.context, self.C, self.L, self.H = vocab, context, C, L, H
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(vocab, C)
        self.transformer.wpe = nn.Embedding(context, C)
        self.transformer.h = nn.ModuleList([Block(C, H, eps) for _ in range(L)])
        self.transformer.ln_f = nn.LayerNorm(C, eps=eps)
        self.reset_parameters()

    def reset_parameters(self):
        # Same as the Swift engine: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)),
        # biases 0, LayerNorm scales 1.
        resid = 0.02 / math.sqrt(2 * self.L)
        for name, p in self.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "transformer.ln_f.weight":
                nn.init.ones_(p)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, 0.0, resid if name.endswith("c_proj.weight") else 0.02)

    def forward(self, idx):
        B, T = idx.shape
        tr = self.transformer
        x = tr.wte(idx) + tr.wpe.weight[:T]
        for blk in tr.h:
            x = blk(x)
        return F.linear(tr.ln_f(x), tr.wte.weight)                 # [B, T, V]

    def new_cache(self, B):
        hs = self.C // self.H
        shape = (self.L, 2, B, self.H, self.context, hs)
        return torch.zeros(shape, dtype=torch.float32)

    def decode_step(self, tok, t, cache):
        """tok: [B] tokens at position t; returns logits [B, V]."""
        tr = self.transformer
        x = tr.wte(tok) + tr.wpe.weight[t]
        for l, blk in enumerate(tr.h):
            x = blk.decode(x, cache[l, 0], cache[l, 1], t)
        return F.linear(tr.ln_f(x), tr.wte.weight)

    @torch.inference_mode()
    def sample(self, B, cache, generator=None):
        """B rows from token 0 until the context is full. Returns (tokens [B, T], logprobs
        [B, T], processed positions)."""
        T = self.context
        tok = torch.zeros(B, dtype=torch.long)
        out = torch.empty(B, T, dtype=torch.long)
        lps = torch.empty(B, T)
        for t in range(T):
            logits = self.decode_step(tok, t, cache)
            logp = torch.log_softmax(logits, dim=-1)                # temperature 1
            nxt = torch.multinomial(logp.exp(), 1, generator=generator)  # [B, 1]
            lps[:, t] = logp.gather(1, nxt).squeeze(1)
            tok = nxt.squeeze(1)
            out[:, t] = tok
        return out, lps, B * T


def make_optimizer(model, lr=1e-4):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    for kw in ({"fused": True}, {"foreach": True}, {}):
        try:
            opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **kw)
            return opt, (next(iter(kw)) if kw else "default")
        except (RuntimeError, TypeError, ValueError):
            continue
    raise RuntimeError("no AdamW")


# ----------------------------------------------------------------------------- benchmark

def measure_train(model, opt, tokens, targets, seconds, clip):
    V = model.vocab
    params = [p for p in model.parameters()]

    def step():
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    steps = 0
    t0 = time.perf_counter()
    while True:
        step()
        steps += 1
        t1 = time.perf_counter()
        if t1 - t0 >= seconds:
            break
    B, T = tokens.shape
    return steps * B * T / (t1 - t0)


def measure_sample(model, B, seconds, gen):
    cache = model.new_cache(B)
    model.sample(B, cache, gen)  # warm-up
    processed = 0
    t0 = time.perf_counter()
    while True:
        _, _, n = model.sample(B, cache, gen)
        processed += n
        t1 = time.perf_counter()
        if t1 - t0 >= seconds:
            break
    return processed / (t1 - t0)


def run_config(name, C, L, H, args):
    V, T, B = args.vocab, args.context, args.batch
    train, sample = [], []
    for r in range(args.repeats):
        torch.manual_seed(1)
        model = GPT(V, T, C, L, H)
        opt, _ = make_optimizer(model)
        g = torch.Generator().manual_seed(2 + r)
        tokens = torch.randint(0, V, (B, T), generator=g)
        targets = torch.full((B, T), -1, dtype=torch.long)
        targets[:, :-1] = tokens[:, 1:]
        train.append(measure_train(model, opt, tokens, targets, args.seconds, not args.no_clip))
        sample.append(measure_sample(model, B, args.seconds, g))
    return {
        "name": name, "d_model": C, "layers": L, "heads": H, "vocab": V, "context": T, "batch": B,
        "params": sum(p.numel() for p in model.parameters()),
        "train_tokens_per_s": statistics.median(train),
        "sample_tokens_per_s": statistics.median(sample),
        "train_runs": train, "sample_runs": sample,
    }


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def parse_configs(s):
    out = []
    for item in s.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 4:
            raise SystemExit(f"bad config {item!r}: want name:d_model:layers:heads")
        name, C, L, H = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
        if C % H:
            raise SystemExit(f"config {name}: d_model {C} not divisible by heads {H}")
        out.append((name, C, L, H))
    return out


# ----------------------------------------------------------------------------- self-check

def self_check(reference):
    """Compares the training forward with a float64 numpy transcription of
    analysis/reference_gpt.py (or with that script itself, given --reference PATH, via a
    temporary safetensors file), and the cached decode path with the full forward."""
    import numpy as np
    import subprocess
    import tempfile

    torch.manual_seed(0)
    V, T, C, L, H = 23, 16, 32, 2, 4
    model = GPT(V, T, C, L, H)
    # Random (not just init-distributed) weights so biases and norms are exercised.
    W = {}
    rng = np.random.default_rng(0)
    for n, p in model.named_parameters():
        W[n] = (rng.standard_normal(tuple(p.shape)) * (0.3 if p.dim() == 1 else 0.2)).astype(np.float32)
        if n.endswith("ln_1.weight") or n.endswith("ln_2.weight") or n.endswith("ln_f.weight"):
            W[n] += 1.0
    model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()}, strict=True)
    toks = [int(t) for t in rng.integers(0, V, T)]

    with torch.no_grad():
        ours = model(torch.tensor([toks])).squeeze(0).double().numpy()

    if reference:
        # Run the repository's reference on a safetensors file written here.
        hdr, blobs, off = {}, [], 0
        for k, v in W.items():
            b = v.astype("<f4").tobytes()
            hdr[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
            blobs.append(b)
            off += len(b)
        hdr["__metadata__"] = {"d_model": str(C), "n_head": str(H), "n_layer": str(L),
                               "norm_eps": "1e-05", "norm": "layernorm"}
        h = json.dumps(hdr).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
            f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
            path = f.name
        try:
            outp = subprocess.run([sys.executable, reference, path, ",".join(map(str, toks))],
                                  check=True, capture_output=True, text=True).stdout
        finally:
            os.unlink(path)
        ref = np.array(json.loads(outp)).reshape(T, V)
        src = reference
    else:
        Wd = {k: v.astype(np.float64) for k, v in W.items()}
        eps = 1e-5

        def nrm(x, p):
            m = x.mean(-1, keepdims=True)
            var = ((x - m) ** 2).mean(-1, keepdims=True)
            return (x - m) / np.sqrt(var + eps) * Wd[p + ".weight"] + Wd[p + ".bias"]

        def lin(x, p):
            return x @ Wd[p + ".weight"].T + Wd[p + ".bias"]

        def gelu(x):
            return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

        x = Wd["transformer.wte.weight"][toks] + Wd["transformer.wpe.weight"][:T]
        hs = C // H
        for l in range(L):
            p = f"transformer.h.{l}."
            q, k, v = np.split(lin(nrm(x, p + "ln_1"), p + "attn.c_attn"), 3, -1)
            out = np.zeros((T, C))
            for i in range(H):
                s = q[:, i*hs:(i+1)*hs] @ k[:, i*hs:(i+1)*hs].T / np.sqrt(hs)
                s = s + np.triu(np.full((T, T), -np.inf), 1)
                s = np.exp(s - s.max(-1, keepdims=True))
                s /= s.sum(-1, keepdims=True)
                out[:, i*hs:(i+1)*hs] = s @ v[:, i*hs:(i+1)*hs]
            x = x + lin(out, p + "attn.c_proj")
            x = x + lin(gelu(lin(nrm(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
        ref = nrm(x, "transformer.ln_f") @ Wd["transformer.wte.weight"].T
        src = "inline numpy transcription of analysis/reference_gpt.py"

    err_fwd = float(np.abs(ours - ref).max())

    # Cached decoding of the same sequence must give the same logits at every position.
    with torch.inference_mode():
        cache = model.new_cache(1)
        dec = torch.stack([model.decode_step(torch.tensor([toks[t]]), t, cache)[0] for t in range(T)])
    err_dec = float(np.abs(dec.double().numpy() - ref).max())
    scale = float(np.abs(ref).max())
    ok = err_fwd < 1e-4 * max(1.0, scale) and err_dec < 1e-4 * max(1.0, scale)
    print(f"reference: {src}")
    print(f"max |logit| {scale:.3f}; forward max abs err {err_fwd:.2e}; "
          f"kv-cache decode max abs err {err_dec:.2e} -> {'OK' if ok else 'MISMATCH'}")
    return ok


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="xs:16:2:2,s:32:2:2,m:64:2:2,l:96:3:3,large:256:4:4",
                    help="comma list of name:d_model:layers:heads")
    ap.add_argument("--vocab", type=int, default=23)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum time per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per config; median reported")
    ap.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    ap.add_argument("--no-clip", action="store_true", help="skip the grad-norm clip (Swift clips at 1.0)")
    ap.add_argument("--check", action="store_true", help="run the correctness self-check and exit")
    ap.add_argument("--reference", default=None,
                    help="with --check: path to analysis/reference_gpt.py to run as the reference")
    args = ap.parse_args()

    if args.check:
        sys.exit(0 if self_check(args.reference) else 1)

    configs = parse_configs(args.configs)
    _, opt_kind = make_optimizer(GPT(args.vocab, args.context, 8, 1, 1))
    info = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
    }
    print(f"torch {info['torch_version']}  threads {info['threads']}  cpu {info['cpu_model']}  "
          f"AdamW {opt_kind}  clip {'off' if args.no_clip else '1.0'}", file=sys.stderr if args.json else sys.stdout)
    print(f"vocab {args.vocab}  context {args.context}  batch {args.batch}  "
          f"seconds {args.seconds}  repeats {args.repeats} (median)",
          file=sys.stderr if args.json else sys.stdout)

    results = []
    header = f"{'name':<8} {'d_model':>7} {'layers':>6} {'heads':>5} {'params':>10} {'train tok/s':>12} {'sample tok/s':>13}"
    out = sys.stderr if args.json else sys.stdout
    print(header, file=out)
    for name, C, L, H in configs:
        r = run_config(name, C, L, H, args)
        results.append(r)
        print(f"{name:<8} {C:>7} {L:>6} {H:>5} {r['params']:>10} "
              f"{r['train_tokens_per_s']:>12.0f} {r['sample_tokens_per_s']:>13.0f}", file=out, flush=True)

    if args.json:
        info["configs"] = [{k: r[k] for k in ("name", "d_model", "layers", "heads", "vocab", "context",
                                              "batch", "train_tokens_per_s", "sample_tokens_per_s")}
                           for r in results]
        print(json.dumps(info))


if __name__ == "__main__":
    main()
