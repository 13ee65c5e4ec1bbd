"""Plug-in units and layers shared by the backbones: attention (CA/FCA/MMCA), dynamic HPF, DCT bases, upsampler,
residual block. Import the submodules directly (this package imports nothing, so the registries stay acyclic)."""
