"""Causal language models for cells (no AnnData here): loading, prompts, fine-tuning and generation.

Torch and transformers are imported by the functions that need them, so importing this package stays light.
"""
