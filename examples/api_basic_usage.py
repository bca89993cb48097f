"""The reference library's "Basic Usage", against any OpenAI-compatible vision endpoint.

Pick the endpoint with environment variables (or a .env file):

* OpenRouter: OPENROUTER_API_KEY=...                      (model e.g. openai/gpt-4o)
* OpenAI:     OPENAI_API_KEY=...  OPENAI_BASE_URL=https://api.openai.com/v1  (gpt-4o)
* Ollama:     OPENAI_BASE_URL=http://localhost:11434/v1   (model e.g. llama3.2-vision)
* vLLM:       OPENAI_BASE_URL=http://localhost:8000/v1    (the served model's name)

Run:  python examples/api_basic_usage.py --model openai/gpt-4o
"""

from __future__ import annotations

import argparse
import os

import matplotlib.pyplot as plt
import numpy as np
import openai
from dotenv import load_dotenv

import llmlex

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="openai/gpt-4o")
args = parser.parse_args()
load_dotenv()

base_url = os.getenv("OPENAI_BASE_URL") or "https://openrouter.ai/api/v1"
api_key = os.getenv("OPENROUTER_API_KEY") or os.getenv("OPENAI_API_KEY") or "not-needed-locally"
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=3, timeout=120)

x = np.linspace(-1, 1, 50)
y = np.sin(np.pi * x) + 0.1 * np.random.default_rng(0).standard_normal(50)

fig, ax = plt.subplots()
ax.scatter(x, y)
base64_img = llmlex.images.generate_base64_image(fig, ax, x, y)

result = llmlex.single_call(client, base64_img, x, y, model=args.model)
print(f"Best function: {result['ansatz']}")
print(f"Parameters: {result['params']}")
print(f"Score: {result['score']}")

populations = llmlex.run_genetic(
    client, base64_img, x, y, population_size=5, num_of_generations=3, model=args.model
)
print("best of the run:", populations.best.formula(), "nchi2 =", populations.best.nchi2)
print("calls:", populations.stats.calls, "tokens:", populations.stats.total_tokens)
