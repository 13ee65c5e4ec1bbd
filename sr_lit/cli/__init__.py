"""Console entry points: thin shells over the library (sr-train, sr-eval, sr-upscale, sr-summary, sr-report)."""
