#!/usr/bin/env python3
"""Independent numpy implementation of the rlscale policy, for checking checkpoints.

Usage: python3 analysis/reference_gpt.py MODEL.safetensors 1,5,3,8
Prints the logits [T, V] (flattened, JSON) of the token sequence. It reads the file
with nothing but json/struct/numpy, following the architecture in the README, so
agreement with `rlscale inspect --logits` shows the checkpoint is self-describing."""
import json, struct, sys, numpy as np
path = sys.argv[1]; toks = [int(x) for x in sys.argv[2].split(',')]
raw = open(path,'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; hdr = json.loads(raw[8:8+n]); meta = hdr.pop('__metadata__')
W = {k: np.frombuffer(raw[8+n+v['data_offsets'][0]:8+n+v['data_offsets'][1]], dtype='<f4').reshape(v['shape']).astype(np.float64) for k,v in hdr.items()}
C=int(meta['d_model']); H=int(meta['n_head']); L=int(meta['n_layer']); eps=float(meta['norm_eps']); norm=meta['norm']
def nrm(x, p):
    if norm=='layernorm':
        m=x.mean(-1,keepdims=True); v=((x-m)**2).mean(-1,keepdims=True); return (x-m)/np.sqrt(v+eps)*W[p+'.weight']+W[p+'.bias']
    return x/np.sqrt((x**2).mean(-1,keepdims=True)+eps)*W[p+'.weight']
def lin(x,p): return x@W[p+'.weight'].T+W[p+'.bias']
gelu=lambda x:0.5*x*(1+np.tanh(np.sqrt(2/np.pi)*(x+0.044715*x**3)))
T=len(toks); x=W['transformer.wte.weight'][toks]+W['transformer.wpe.weight'][:T]
for l in range(L):
    p=f'transformer.h.{l}.'; h=nrm(x,p+'ln_1'); qkv=lin(h,p+'attn.c_attn'); q,k,v=np.split(qkv,3,-1); hs=C//H; out=np.zeros((T,C))
    for i in range(H):
        s=q[:,i*hs:(i+1)*hs]@k[:,i*hs:(i+1)*hs].T/np.sqrt(hs); s=s+np.triu(np.full((T,T),-np.inf),1); s=np.exp(s-s.max(-1,keepdims=True)); s/=s.sum(-1,keepdims=True); out[:,i*hs:(i+1)*hs]=s@v[:,i*hs:(i+1)*hs]
    x=x+lin(out,p+'attn.c_proj'); x=x+lin(gelu(lin(nrm(x,p+'ln_2'),p+'mlp.c_fc')),p+'mlp.c_proj')
print(json.dumps((nrm(x,'transformer.ln_f')@W['transformer.wte.weight'].T).ravel().tolist()))
