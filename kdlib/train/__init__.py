"""Training: recipes, the training loop, its faster engines and checkpoints."""
