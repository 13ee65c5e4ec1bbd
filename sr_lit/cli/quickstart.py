"""Which quickstart run `make train` starts on this machine; prints the experiment name (the Makefile reads it).

`quickstart_bf16` where the CPU computes bf16 natively (AVX-512 BF16 or AMX): there bf16 autocast trains the
`make train` model ~1.4x faster, so its 10-minute budget holds 3600 steps instead of 2000 and scores ~0.2 dB more
(results/make_train_tuning). Elsewhere `quickstart` (fp32): bf16 would run ~10x slower. `make train
EXPERIMENT=quickstart` (or `quickstart_bf16`) overrides the choice.
"""

from __future__ import annotations

QUICKSTART = "quickstart"
QUICKSTART_BF16 = "quickstart_bf16"


def choose(native_bf16: bool | None = None) -> str:
    """The experiment for a CPU with (True) or without (False) native bf16; None: this machine's CPU."""
    if native_bf16 is None:
        from sr_lit.models.blocks.precision import native_bf16 as probe

        native_bf16 = probe("cpu")
    return QUICKSTART_BF16 if native_bf16 else QUICKSTART


def main() -> None:
    print(choose())


if __name__ == "__main__":
    main()
