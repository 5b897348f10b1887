"""Generation: decoding algorithms shared by both backends, prompts, HumanEval sampling."""
