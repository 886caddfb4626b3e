# How often does transformers itself, run in bf16, disagree with the f32 reference greedy tokens at steps
# whose reference margin exceeds 0.05? (teacher-forced: one causal forward over prompt + greedy[:-1])
#   python3 hf-bf16-greedy.py MODEL_DIR...
import json, sys
import torch
from transformers import AutoModelForCausalLM

torch.set_grad_enabled(False)
for d in sys.argv[1:]:
    ref = json.load(open(f"{d}/reference.json"))
    for dt in (torch.bfloat16, torch.float32):
        m = AutoModelForCausalLM.from_pretrained(d, dtype=dt).cuda().eval()
        checked = bad = 0
        for c in ref["cases"]:
            p, g, mg = c["prompt"], c["greedy"], c["greedy_margins"]
            ids = torch.tensor([p + g[:-1]]).cuda()
            lg = m(ids).logits[0].float()
            for i in range(len(g)):
                if mg[i] > 0.05:
                    checked += 1
                    bad += int(lg[len(p) - 1 + i].argmax().item() != g[i])
        print(f"{d.split('/')[-1]} transformers {dt}: {bad} mismatches over {checked} steps with margin > 0.05")
