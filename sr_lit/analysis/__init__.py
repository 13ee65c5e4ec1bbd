"""Frequency-domain evidence: where in the spectrum SR errors lie (per band), paired statistics over images, and
what the trained HPF and MMCA units learned. Imports models, data, metrics and inference only (never lit/cli)."""
