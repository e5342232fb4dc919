"""What the fine-tuned kinds share: their training arguments, the one training loop and the
networks. Kept top-level (not inside a kind) so export code can import the networks alone."""
