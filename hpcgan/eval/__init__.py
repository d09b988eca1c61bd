"""Evaluation: feature statistics streamed across ranks, FID and KID."""
