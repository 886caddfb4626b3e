# Diffs the CUDA backend's per-layer logits (cuda-tests --dump) against transformers on the GPU host:
#   python3 compare-hf.py MODEL_DIR CASE DUMP.bin
# For n = 1..L: max |ours - hf| of lm_head(norm(hidden after n layers)) for the case's last prompt row.
import json, sys
import numpy as np
import torch
from transformers import AutoModelForCausalLM

d, case, dump = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ref = json.load(open(f"{d}/reference.json"))
prompt = ref["cases"][case]["prompt"]
m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).cuda().eval()
torch.backends.cuda.matmul.allow_tf32 = False
torch.set_grad_enabled(False)
out = m(torch.tensor([prompt]).cuda(), output_hidden_states=True)
rot = m.model.rotary_emb
print("inv_freq dtype", rot.inv_freq.dtype, "first", rot.inv_freq[:3].tolist())
hs = out.hidden_states
L = m.config.num_hidden_layers
ours = np.fromfile(dump, dtype=np.float32).reshape(L, -1)
for n in range(1, L + 1):
    h = hs[n][0, -1]
    if n < L:
        h = m.model.norm(h)
    lg = m.lm_head(h).float().cpu().numpy()
    diff = np.abs(ours[n - 1] - lg).max()
    print(f"{d.split('/')[-1]} case {case} ({len(prompt)} tok) layers {n}: max|diff| {diff:.3e}  hf top {lg.argmax()} ours top {ours[n-1].argmax()}")
top = ref["cases"][case]["last_logits_top16"]
lg = out.logits[0, -1].float().cpu().numpy()
print("hf vs reference.json top16 max diff", max(abs(lg[i] - v) for i, v in zip(top["ids"], top["values"])))
