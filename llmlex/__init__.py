"""llmlex: symbolic regression with vision-capable language models (LLM-LEx).

Hand it data, get back a formula that fits, with its fitted parameters and score.
"""
